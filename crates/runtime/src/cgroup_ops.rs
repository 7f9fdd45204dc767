//! Commands that work through the container's cgroup: `pause`, `resume`, `ps`, `update`,
//! `events`.

use std::time::Duration;

use husk_cgroups::{Manager, Stats};
use husk_state::{Lock, Status};
use oci_spec::runtime::LinuxResources;
use serde::Serialize;

use crate::error::{Operation, StatusError};
use crate::{Result, Runtime, RuntimeError};

/// One line of `events` output, as runc prints it.
#[derive(Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Stats>,
}

impl Runtime {
    fn cgroup_of(
        &self,
        id: &str,
        lock: Lock,
    ) -> Result<(husk_state::ContainerDir, crate::record::Record, Manager)> {
        let (dir, rec) = self.load(id, lock)?;
        let cg = rec
            .cgroup
            .clone()
            .ok_or_else(|| RuntimeError::Usage(format!("container {id} has no cgroup")))?;
        Ok((dir, rec, cg))
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        self.pause_container(id).map_err(|e| e.in_container(id))
    }

    fn pause_container(&self, id: &str) -> Result<()> {
        let (dir, rec, cg) = self.cgroup_of(id, Lock::Exclusive)?;
        match rec.status(&dir) {
            Status::Running | Status::Created => {}
            status => return Err(StatusError::new(Operation::Pause, status).into()),
        }
        cg.freeze().map_err(RuntimeError::Cgroup)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        self.resume_container(id).map_err(|e| e.in_container(id))
    }

    fn resume_container(&self, id: &str) -> Result<()> {
        let (dir, rec, cg) = self.cgroup_of(id, Lock::Exclusive)?;
        let status = rec.status(&dir);
        if status != Status::Paused {
            return Err(StatusError::new(Operation::Resume, status).into());
        }
        cg.thaw().map_err(RuntimeError::Cgroup)
    }

    /// Host pids of every process of the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        self.pids_of(id).map_err(|e| e.in_container(id))
    }

    fn pids_of(&self, id: &str) -> Result<Vec<i32>> {
        let (dir, rec, cg) = self.cgroup_of(id, Lock::Shared)?;
        if rec.status(&dir) == Status::Stopped && rec.pid_ns {
            return Ok(Vec::new());
        }
        cg.pids().map_err(RuntimeError::Cgroup)
    }

    /// Applies new limits to the live cgroup and records them in the container's spec.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        self.update_container(id, resources)
            .map_err(|e| e.in_container(id))
    }

    fn update_container(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (dir, mut rec, cg) = self.cgroup_of(id, Lock::Exclusive)?;
        if rec.status(&dir) == Status::Stopped {
            return Err(StatusError::new(Operation::Update, Status::Stopped).into());
        }
        cg.apply(resources).map_err(RuntimeError::Cgroup)?;
        if let Some(linux) = rec.spec.linux_mut().as_mut() {
            let merged = merge(linux.resources().clone().unwrap_or_default(), resources);
            linux.set_resources(Some(merged));
        }
        dir.save(&rec)?;
        Ok(())
    }

    pub fn stats(&self, id: &str) -> Result<Stats> {
        self.stats_of(id).map_err(|e| e.in_container(id))
    }

    fn stats_of(&self, id: &str) -> Result<Stats> {
        let (dir, rec, cg) = self.cgroup_of(id, Lock::None)?;
        if rec.status(&dir) == Status::Stopped {
            return Err(StatusError::new(Operation::Stats, Status::Stopped).into());
        }
        cg.stats().map_err(RuntimeError::Cgroup)
    }

    /// `events` without `--stats`: a stats event every `interval`, and an `oom` event when
    /// the OOM-kill counter moves, until the container stops.
    pub fn events(&self, id: &str, interval: Duration, emit: impl FnMut(&Event<'_>)) -> Result<()> {
        self.events_of(id, interval, emit)
            .map_err(|e| e.in_container(id))
    }

    fn events_of(
        &self,
        id: &str,
        interval: Duration,
        mut emit: impl FnMut(&Event<'_>),
    ) -> Result<()> {
        let (_, _, cg) = self.cgroup_of(id, Lock::None)?;
        let ooms_now = || cg.oom_kills().map_err(RuntimeError::Cgroup);
        let mut ooms = ooms_now()?;
        loop {
            let stats = match self.stats(id) {
                Ok(s) => s,
                Err(RuntimeError::Status(_)) | Err(RuntimeError::State(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            let now = ooms_now()?;
            if now > ooms {
                emit(&Event {
                    kind: "oom",
                    id,
                    data: None,
                });
            }
            ooms = now;
            emit(&Event {
                kind: "stats",
                id,
                data: Some(stats),
            });
            std::thread::sleep(interval);
        }
    }
}

/// `update` changes only what it names; the stored spec keeps everything else.
fn merge(mut old: LinuxResources, new: &LinuxResources) -> LinuxResources {
    macro_rules! take {
        ($get:ident, $set:ident) => {
            if new.$get().is_some() {
                old.$set(new.$get().clone());
            }
        };
    }
    take!(memory, set_memory);
    take!(cpu, set_cpu);
    take!(pids, set_pids);
    take!(block_io, set_block_io);
    take!(hugepage_limits, set_hugepage_limits);
    take!(network, set_network);
    take!(rdma, set_rdma);
    take!(unified, set_unified);
    old
}
