//! Runtime-level calls a kubelet makes at start: Version, Status, the images it will use.

use k8s_cri::v1 as cri;

use crate::cri::{bounded, Cri};
use crate::report::{check, ensure};
use crate::Env;

pub async fn run(cri: &Cri, env: &Env) {
    check("[cri] Version (runtime.v1)", version(cri).await);
    check(
        "[cri] Status (RuntimeReady, NetworkReady)",
        status(cri).await,
    );
    check(
        "[cri] ImageStatus (busybox and pause images imported)",
        images(cri, env).await,
    );
}

async fn version(cri: &Cri) -> Result<(), String> {
    let req = cri::VersionRequest {
        version: "v1".into(),
    };
    let v = bounded(cri.timeout, "Version", cri.rt.clone().version(req)).await?;
    println!(
        "containerd: {} {} (CRI {})",
        v.runtime_name, v.runtime_version, v.runtime_api_version
    );
    ensure(
        v.runtime_name == "containerd" && v.runtime_api_version == "v1",
        || format!("runtime {} API {}", v.runtime_name, v.runtime_api_version),
    )
}

async fn status(cri: &Cri) -> Result<(), String> {
    let req = cri::StatusRequest { verbose: false };
    let s = bounded(cri.timeout, "Status", cri.rt.clone().status(req)).await?;
    let conds = s.status.map(|s| s.conditions).unwrap_or_default();
    for want in ["RuntimeReady", "NetworkReady"] {
        let c = conds.iter().find(|c| c.r#type == want);
        ensure(c.is_some_and(|c| c.status), || {
            format!("{want} not true: {c:?}")
        })?;
    }
    Ok(())
}

async fn images(cri: &Cri, env: &Env) -> Result<(), String> {
    for image in [&env.image, &env.pause_image] {
        let req = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            verbose: false,
        };
        let s = bounded(
            cri.timeout,
            "ImageStatus",
            cri.img.clone().image_status(req),
        )
        .await?;
        ensure(s.image.is_some(), || format!("image {image} not found"))?;
    }
    Ok(())
}
