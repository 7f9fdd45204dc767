//! What went wrong in the child: a `Copy` value the child can send over a socket as bytes and
//! the parent turns into a one-line message.

use husk_sys::Errno;

/// The step of the child-side plan that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Step {
    Rlimit = 1,
    NoNewPrivs,
    Bounding,
    KeepCaps,
    Setgroups,
    Setgid,
    Setuid,
    Capset,
    Ambient,
    Seccomp,
    Lsm,
    IoPriority,
    Scheduler,
    Personality,
}

impl Step {
    const ALL: [Step; 14] = [
        Step::Rlimit,
        Step::NoNewPrivs,
        Step::Bounding,
        Step::KeepCaps,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Capset,
        Step::Ambient,
        Step::Seccomp,
        Step::Lsm,
        Step::IoPriority,
        Step::Scheduler,
        Step::Personality,
    ];
}

impl From<Step> for u16 {
    fn from(step: Step) -> u16 {
        step as u16
    }
}

impl TryFrom<u16> for Step {
    /// The unknown value.
    type Error = u16;

    fn try_from(value: u16) -> Result<Step, u16> {
        Step::ALL
            .into_iter()
            .find(|s| *s as u16 == value)
            .ok_or(value)
    }
}

/// `Failure::index` of a [`Step::Ambient`] failure in `PR_CAP_AMBIENT_CLEAR_ALL`.
pub const AMBIENT_CLEAR_ALL: u32 = u32::MAX;

/// A child-side failure: which step, which item (rlimit index, capability number, LSM path
/// index; 0 when the step has one item), and the errno. `Copy`, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub index: u32,
    pub errno: Errno,
}

/// Size of [`Failure::to_bytes`]: step (u16), index (u32), errno (i32), little-endian.
pub const FAILURE_BYTES: usize = 10;

impl Failure {
    pub(crate) fn new(step: Step, index: u32, errno: Errno) -> Failure {
        Failure { step, index, errno }
    }

    /// Wire form, safe to build in the child (no allocation).
    pub fn to_bytes(&self) -> [u8; FAILURE_BYTES] {
        let mut out = [0u8; FAILURE_BYTES];
        out[0..2].copy_from_slice(&u16::from(self.step).to_le_bytes());
        out[2..6].copy_from_slice(&self.index.to_le_bytes());
        out[6..10].copy_from_slice(&self.errno.0.to_le_bytes());
        out
    }

    /// Parses [`Failure::to_bytes`]; `None` when the step is unknown.
    pub fn from_bytes(bytes: &[u8; FAILURE_BYTES]) -> Option<Failure> {
        let step = Step::try_from(u16::from_le_bytes([bytes[0], bytes[1]])).ok()?;
        let index = u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
        let errno = i32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        Some(Failure {
            step,
            index,
            errno: Errno(errno),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_step() {
        for (i, step) in Step::ALL.into_iter().enumerate() {
            let f = Failure::new(step, i as u32 * 7 + 1, Errno(libc::EPERM + i as i32));
            assert_eq!(Failure::from_bytes(&f.to_bytes()), Some(f));
        }
        assert_eq!(Step::try_from(0), Err(0));
        assert_eq!(Step::try_from(999), Err(999));
        let mut bad = Failure::new(Step::Lsm, 0, Errno(1)).to_bytes();
        bad[0] = 0xff;
        assert_eq!(Failure::from_bytes(&bad), None);
    }
}
