//! Making sure a module's image is on this machine.

use bollard::{errors::Error as DockerError, query_parameters::CreateImageOptionsBuilder};
use futures::StreamExt;
use lilypad_core::module::ImageRef;
use tokio::time::Instant;

use super::{ExecError, Executor, daemon_message, reference};

/// One progress event of a pull, as the daemon reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PullProgress {
    /// The layer (short id) the event is about, if any.
    pub layer: Option<String>,
    /// What happens: `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: ...`.
    pub status: String,
    /// Bytes done, when the daemon counts.
    pub current: Option<u64>,
    /// Bytes in total, when known.
    pub total: Option<u64>,
}

/// The image is on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImageReady {
    /// The reference that resolves to it (`repo@sha256:...` when pinned).
    pub reference: String,
    /// The local image id (`sha256:...` of its config).
    pub id: String,
    /// Whether it was pulled now (false: it was already here).
    pub pulled: bool,
}

impl Executor {
    /// Makes sure `image` is on this machine: nothing is pulled when it is
    /// present; otherwise it is pulled (by digest when pinned) and `progress`
    /// sees every event. A pinned image must come back with that digest, or
    /// this fails with [`ExecError::DigestMismatch`].
    pub async fn ensure_image(
        &self,
        image: &ImageRef,
        mut progress: impl FnMut(PullProgress),
    ) -> Result<ImageReady, ExecError> {
        let docker = self.client().await?;
        let reference = reference(image);
        if let Some(id) = self.local_image(&reference, image).await? {
            return Ok(ImageReady { reference, id, pulled: false });
        }

        // fromImage=repo with tag=<digest or tag>: the daemon pulls exactly that.
        let tag =
            image.digest.clone().or_else(|| image.tag.clone()).unwrap_or_else(|| "latest".into());
        let options =
            CreateImageOptionsBuilder::new().from_image(&image.repository).tag(&tag).build();
        let mut stream = docker.create_image(Some(options), None, None);
        let started = Instant::now();
        loop {
            let left = self.pull_timeout.saturating_sub(started.elapsed());
            let wait = left.min(self.pull_stall_timeout);
            let Ok(next) = tokio::time::timeout(wait, stream.next()).await else {
                let (what, after) = if left <= self.pull_stall_timeout {
                    ("not finished", self.pull_timeout)
                } else {
                    ("no progress", self.pull_stall_timeout)
                };
                return Err(ExecError::PullTimeout { image: reference, what, after });
            };
            let Some(event) = next else { break };
            let info = event.map_err(|e| pull_error(image, &reference, &e))?;
            if let Some(detail) = info.error_detail {
                let reason = detail.message.unwrap_or_else(|| "unknown error".into());
                return Err(classify_pull_failure(image, &reference, reason));
            }
            let detail = info.progress_detail.unwrap_or_default();
            progress(PullProgress {
                layer: info.id.filter(|i| !i.is_empty()),
                status: info.status.unwrap_or_default(),
                current: detail.current.and_then(|c| u64::try_from(c).ok()),
                total: detail.total.and_then(|t| u64::try_from(t).ok()),
            });
        }

        match self.local_image(&reference, image).await? {
            Some(id) => Ok(ImageReady { reference, id, pulled: true }),
            None => {
                // The pull ended without error but the reference does not resolve:
                // the daemon stored something else under the name.
                let got = match image.digest {
                    Some(_) => self.digests_of(image).await,
                    None => Vec::new(),
                };
                match &image.digest {
                    Some(expected) => Err(ExecError::DigestMismatch {
                        image: reference,
                        expected: expected.clone(),
                        got,
                        detail: String::new(),
                    }),
                    None => Err(ExecError::ImageMissing {
                        image: reference,
                        reason: "the pull finished but the image is not there".into(),
                    }),
                }
            }
        }
    }

    /// The local image id, when `reference` resolves here (and, if pinned,
    /// carries the pinned digest).
    ///
    /// A pin is either a repo digest (the sha256 of a registry manifest: the
    /// daemon records one when it pulls or pushes the image) or the image id
    /// itself (the sha256 of the image config, which names the sha256 of every
    /// layer: as binding as a manifest digest). An image built and loaded here
    /// has no repo digest, so the example model modules pin their id
    /// (`scripts/pinned-image.py` builds them with fixed metadata so the id is
    /// the same on every machine).
    pub(crate) async fn local_image(
        &self,
        reference: &str,
        image: &ImageRef,
    ) -> Result<Option<String>, ExecError> {
        let docker = self.client().await?;
        match docker.inspect_image(reference).await {
            Ok(found) => {
                let id = found.id.unwrap_or_default();
                if let Some(expected) = &image.digest {
                    let digests = found.repo_digests.unwrap_or_default();
                    // Content addressed: the same manifest digest under another
                    // repository name is the same image.
                    if id != *expected
                        && !digests.iter().any(|d| d.rsplit('@').next() == Some(expected.as_str()))
                    {
                        return Err(ExecError::DigestMismatch {
                            image: reference.to_owned(),
                            expected: expected.clone(),
                            got: digests,
                            detail: String::new(),
                        });
                    }
                }
                Ok(Some(id))
            }
            Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                // `repo@sha256:<id>` does not resolve by image id in the daemon:
                // look the id up by itself.
                let Some(expected) = &image.digest else { return Ok(None) };
                match docker.inspect_image(expected).await {
                    Ok(found) if found.id.as_deref() == Some(expected.as_str()) => {
                        Ok(Some(expected.clone()))
                    }
                    Ok(_)
                    | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {
                        Ok(None)
                    }
                    Err(source) => Err(ExecError::Docker { op: "inspect image", source }),
                }
            }
            Err(source) => Err(ExecError::Docker { op: "inspect image", source }),
        }
    }

    /// The digests the daemon has for the image's repository (tag or name).
    async fn digests_of(&self, image: &ImageRef) -> Vec<String> {
        let Ok(docker) = self.client().await else { return Vec::new() };
        let by_tag = format!("{}:{}", image.repository, image.tag.as_deref().unwrap_or("latest"));
        docker.inspect_image(&by_tag).await.ok().and_then(|i| i.repo_digests).unwrap_or_default()
    }
}

fn pull_error(image: &ImageRef, reference: &str, e: &DockerError) -> ExecError {
    classify_pull_failure(image, reference, daemon_message(e))
}

/// Sorts a pull failure: content that does not hash to the pinned digest, an
/// image the registry does not have, or anything else.
fn classify_pull_failure(image: &ImageRef, reference: &str, reason: String) -> ExecError {
    let lower = reason.to_ascii_lowercase();
    if let Some(expected) = &image.digest
        && (lower.contains("verification failed") || lower.contains("digest did not match"))
    {
        return ExecError::DigestMismatch {
            image: reference.to_owned(),
            expected: expected.clone(),
            got: Vec::new(),
            detail: reason,
        };
    }
    if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("no such")
    {
        return ExecError::ImageMissing { image: reference.to_owned(), reason };
    }
    ExecError::Pull { image: reference.to_owned(), reason }
}
