//! process.ioPriority, process.scheduler and linux.personality.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

use crate::failure::{Failure, Step};
use crate::sys::{self, SchedAttr};
use crate::HardeningError;

const IOPRIO_CLASS_SHIFT: u32 = 13;
const PER_LINUX: u32 = 0x0000;
const PER_LINUX32: u32 = 0x0008;
const SCHED_ATTR_SIZE_VER0: u32 = 48;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scheduling {
    /// (value for ioprio_set, "CLASS priority" for messages)
    pub ioprio: Option<(u32, String)>,
    pub sched: Option<(SchedAttr, String)>,
    pub personality: Option<(u32, &'static str)>,
}

impl Scheduling {
    pub fn new(
        io: Option<&LinuxIOPriority>,
        sched: Option<&Scheduler>,
        personality: Option<&LinuxPersonality>,
    ) -> Result<Scheduling, HardeningError> {
        Ok(Scheduling {
            ioprio: io.map(ioprio).transpose()?,
            sched: sched.map(sched_attr).transpose()?,
            personality: personality.map(persona).transpose()?,
        })
    }

    /// Child: ioprio_set, sched_setattr, personality, each only when configured.
    pub fn apply(&self) -> Result<(), Failure> {
        if let Some((prio, _)) = &self.ioprio {
            sys::ioprio_set(*prio).map_err(|e| Failure::new(Step::IoPriority, 0, e))?;
        }
        if let Some((attr, _)) = &self.sched {
            sys::sched_setattr(attr).map_err(|e| Failure::new(Step::Scheduler, 0, e))?;
        }
        if let Some((persona, _)) = self.personality {
            sys::personality(persona).map_err(|e| Failure::new(Step::Personality, 0, e))?;
        }
        Ok(())
    }
}

fn ioprio(io: &LinuxIOPriority) -> Result<(u32, String), HardeningError> {
    let (class, name) = match io.class() {
        IOPriorityClass::IoprioClassRt => (1, "IOPRIO_CLASS_RT"),
        IOPriorityClass::IoprioClassBe => (2, "IOPRIO_CLASS_BE"),
        IOPriorityClass::IoprioClassIdle => (3, "IOPRIO_CLASS_IDLE"),
    };
    let prio = io.priority();
    if !(0..=7).contains(&prio) {
        return Err(HardeningError::invalid(
            "process.ioPriority.priority",
            format!("{prio} is out of range (0-7)"),
        ));
    }
    Ok((
        (class << IOPRIO_CLASS_SHIFT) | prio as u32,
        format!("{name} {prio}"),
    ))
}

fn sched_attr(s: &Scheduler) -> Result<(SchedAttr, String), HardeningError> {
    use LinuxSchedulerPolicy::*;
    let (policy, name) = match s.policy() {
        SchedOther => (0, "SCHED_OTHER"),
        SchedFifo => (1, "SCHED_FIFO"),
        SchedRr => (2, "SCHED_RR"),
        SchedBatch => (3, "SCHED_BATCH"),
        SchedIso => (4, "SCHED_ISO"),
        SchedIdle => (5, "SCHED_IDLE"),
        SchedDeadline => (6, "SCHED_DEADLINE"),
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(HardeningError::invalid(
            "process.scheduler.nice",
            format!("{nice} is out of range (-20 to 19)"),
        ));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(s.policy(), SchedFifo | SchedRr);
    if realtime && !(1..=99).contains(&priority) {
        return Err(HardeningError::invalid(
            "process.scheduler.priority",
            format!("{priority} is out of range (1-99) for {name}"),
        ));
    }
    if !realtime && priority != 0 {
        return Err(HardeningError::invalid(
            "process.scheduler.priority",
            format!("must be 0 for {name}"),
        ));
    }
    let deadline_fields = [s.runtime(), s.deadline(), s.period()];
    if !matches!(s.policy(), SchedDeadline)
        && deadline_fields.iter().any(|f| f.is_some_and(|v| v != 0))
    {
        return Err(HardeningError::invalid(
            "process.scheduler",
            format!("runtime, deadline and period are only valid for SCHED_DEADLINE, not {name}"),
        ));
    }
    let flags = s.flags().iter().flatten().fold(0u64, |acc, f| {
        acc | match f {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    let attr = SchedAttr {
        size: SCHED_ATTR_SIZE_VER0,
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
    };
    Ok((attr, name.to_string()))
}

fn persona(p: &LinuxPersonality) -> Result<(u32, &'static str), HardeningError> {
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(HardeningError::invalid(
            "linux.personality.flags",
            "no flags are supported",
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => (PER_LINUX, "LINUX"),
        LinuxPersonalityDomain::PerLinux32 => (PER_LINUX32, "LINUX32"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn encodes_and_validates() {
        let io: LinuxIOPriority = parse(r#"{"class":"IOPRIO_CLASS_IDLE","priority":7}"#);
        assert_eq!(
            ioprio(&io).unwrap(),
            ((3 << 13) | 7, "IOPRIO_CLASS_IDLE 7".into())
        );
        let io: LinuxIOPriority = parse(r#"{"class":"IOPRIO_CLASS_BE","priority":8}"#);
        assert!(ioprio(&io)
            .unwrap_err()
            .to_string()
            .contains("process.ioPriority.priority: 8"));

        let s: Scheduler =
            parse(r#"{"policy":"SCHED_FIFO","priority":10,"flags":["SCHED_RESET_ON_FORK"]}"#);
        let (attr, name) = sched_attr(&s).unwrap();
        assert_eq!(
            (
                attr.policy,
                attr.priority,
                attr.flags,
                attr.size,
                name.as_str()
            ),
            (1, 10, 1, 48, "SCHED_FIFO")
        );
        let s: Scheduler = parse(r#"{"policy":"SCHED_RR"}"#);
        assert!(sched_attr(&s).is_err(), "realtime policies need a priority");
        let s: Scheduler = parse(r#"{"policy":"SCHED_OTHER","nice":25}"#);
        assert!(sched_attr(&s).is_err());
        let s: Scheduler = parse(r#"{"policy":"SCHED_BATCH","runtime":100}"#);
        assert!(sched_attr(&s).is_err());

        let p: LinuxPersonality = parse(r#"{"domain":"LINUX32"}"#);
        assert_eq!(persona(&p).unwrap(), (PER_LINUX32, "LINUX32"));
        let p: LinuxPersonality = parse(r#"{"domain":"LINUX","flags":["X"]}"#);
        assert!(persona(&p).is_err());
    }
}
