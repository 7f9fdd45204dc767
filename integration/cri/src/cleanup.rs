//! Stops and removes every pod of this (private) containerd: the suite's cleanup, run even
//! after a failure.

use crate::cri::Cri;
use crate::Env;

pub async fn run(cri: &Cri, _env: &Env) -> i32 {
    let pods = match cri.list_pods().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cleanup: {e}");
            return 1;
        }
    };
    let mut rc = 0;
    for p in pods {
        if let Err(e) = cri.stop_pod(&p.id).await.and(cri.remove_pod(&p.id).await) {
            eprintln!("cleanup: pod {}: {e}", p.id);
            rc = 1;
        }
    }
    rc
}
