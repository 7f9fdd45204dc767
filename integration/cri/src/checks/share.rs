//! Two containers of one pod share its network and IPC namespaces.

use std::time::Duration;

use k8s_cri::v1 as cri;

use super::web::want;
use super::{eventually, start_container, Ctx, Started};
use crate::host;
use crate::report::ensure;

/// A `server` container (busybox httpd on 127.0.0.1:8080) in the same pod.
pub async fn share(cx: &Ctx<'_>, st: &mut Started, app: &str) {
    let server = async {
        let c = st.pod.container(
            cx.env,
            "server",
            0,
            "exec httpd -f -p 127.0.0.1:8080 -h /etc",
        )?;
        let id = start_container(cx, st, c).await?;
        cx.cri
            .wait_state(
                &id,
                cri::ContainerState::ContainerRunning,
                Duration::from_secs(10),
            )
            .await?;
        Ok::<_, String>(id)
    };
    let server = match server.await {
        Ok(id) => id,
        Err(e) => {
            cx.check(
                "two containers share the network (HTTP on localhost)",
                Err(e),
            );
            return;
        }
    };
    let host_name = st.pod.name.clone();
    let r = eventually(Duration::from_secs(10), || async {
        want(
            cx.cri
                .sh(app, "wget -q -O - http://127.0.0.1:8080/hostname")
                .await,
            &host_name,
        )
    })
    .await;
    cx.check("two containers share the network (HTTP on localhost)", r);
    let r = async {
        cx.cri.sh(app, "echo shared-ipc >/dev/shm/x").await?;
        want(cx.cri.sh(&server, "cat /dev/shm/x").await, "shared-ipc")?;
        let pid = |id: &str| {
            st.containers
                .iter()
                .find(|c| c.0 == id)
                .map(|c| c.1.to_string())
                .unwrap_or_default()
        };
        let (a, s) = (pid(app), pid(&server));
        for kind in ["net", "ipc", "uts"] {
            ensure(
                host::ns(&a, kind) == host::ns(&s, kind) && !host::ns(&a, kind).is_empty(),
                || format!("{kind}: {} vs {}", host::ns(&a, kind), host::ns(&s, kind)),
            )?;
        }
        ensure(host::ns(&a, "pid") != host::ns(&s, "pid"), || {
            "one pid namespace for both".into()
        })
    };
    cx.check("two containers share IPC (/dev/shm, namespaces)", r.await);
}
