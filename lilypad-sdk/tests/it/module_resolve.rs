//! Module resolution through real git repositories (file:// clones) and the cache.

use std::{path::Path, process::Command, sync::Arc};

use lilypad_core::{inputs::ModuleSource, module::ModuleRef};
use lilypad_sdk::module::{ModuleCache, ResolveError, TEMPLATE_FILE};

const V1: &str = r#"{"machine":{"gpu":0,"cpu":100,"ram":16},"job":{"Spec":{"Docker":{"Image":"busybox:1","Entrypoint":["echo",{{.Message}}]},"Timeout":10}}}"#;
const V2: &str = r#"{"machine":{"gpu":0,"cpu":200,"ram":16},"job":{"Spec":{"Docker":{"Image":"busybox:2","Entrypoint":["echo",{{.Message}}]},"Timeout":10}}}"#;

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .expect("git must be installed for module tests");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository with `v1` tagged and a later commit on `main` that changes the template.
fn module_repo(dir: &Path) -> (String, String, String) {
    run_git(dir, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(dir.join(TEMPLATE_FILE), V1).expect("write template");
    run_git(dir, &["add", "."]);
    run_git(dir, &["commit", "--quiet", "-m", "v1"]);
    run_git(dir, &["tag", "v1"]);
    let c1 = run_git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join(TEMPLATE_FILE), V2).expect("write template");
    run_git(dir, &["commit", "--quiet", "-am", "v2"]);
    let c2 = run_git(dir, &["rev-parse", "HEAD"]);
    (format!("file://{}", dir.display()), c1, c2)
}

fn git_ref(url: &str, r: &str) -> ModuleRef {
    ModuleRef::Git { url: url.to_owned(), git_ref: r.to_owned() }
}

#[test]
fn tags_branches_and_commits_resolve_to_their_commit_and_template() {
    let repo = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (url, c1, c2) = module_repo(repo.path());
    let cache = ModuleCache::new(cache_dir.path());

    let v1 = cache.resolve(&git_ref(&url, "v1")).unwrap();
    assert_eq!(v1.source, ModuleSource::Git { url: url.clone(), commit: c1.clone() });
    assert_eq!(v1.template.source, V1);
    assert_eq!(v1.id, lilypad_core::module::module_id(&url, &c1));

    let main = cache.resolve(&git_ref(&url, "main")).unwrap();
    assert_eq!(main.source, ModuleSource::Git { url: url.clone(), commit: c2 });
    assert_eq!(main.template.source, V2);
    assert_ne!(main.id, v1.id);

    let by_commit = cache.resolve(&git_ref(&url, &c1)).unwrap();
    assert_eq!(by_commit.id, v1.id);

    // The provider side fetches exactly the commit the offer names.
    let fetched = cache.fetch(&v1.source).unwrap();
    assert_eq!(fetched.template.source, V1);
    assert_eq!(fetched.id, v1.id);
}

#[test]
fn the_cache_serves_known_versions_after_the_origin_is_gone() {
    let repo = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (url, c1, _) = module_repo(repo.path());
    let cache = ModuleCache::new(cache_dir.path());
    cache.resolve(&git_ref(&url, "v1")).unwrap();
    std::fs::remove_dir_all(repo.path()).unwrap();
    let again = cache.fetch(&ModuleSource::Git { url, commit: c1 }).unwrap();
    assert_eq!(again.template.source, V1);
}

#[test]
fn new_commits_are_fetched_into_an_existing_mirror() {
    let repo = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (url, _, _) = module_repo(repo.path());
    let cache = ModuleCache::new(cache_dir.path());
    cache.resolve(&git_ref(&url, "v1")).unwrap();
    std::fs::write(repo.path().join(TEMPLATE_FILE), V1.replace("busybox:1", "busybox:3")).unwrap();
    run_git(repo.path(), &["commit", "--quiet", "-am", "v3"]);
    run_git(repo.path(), &["tag", "v3"]);
    let v3 = cache.resolve(&git_ref(&url, "v3")).unwrap();
    assert!(v3.template.source.contains("busybox:3"));
}

#[test]
fn concurrent_resolutions_share_one_clone() {
    let repo = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (url, c1, _) = module_repo(repo.path());
    let cache = Arc::new(ModuleCache::new(cache_dir.path()));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (cache, url) = (Arc::clone(&cache), url.clone());
            std::thread::spawn(move || cache.resolve(&git_ref(&url, "v1")).map(|m| m.source))
        })
        .collect();
    for h in handles {
        let source = h.join().unwrap().unwrap();
        assert_eq!(source, ModuleSource::Git { url: url.clone(), commit: c1.clone() });
    }
    let mirrors: Vec<_> = std::fs::read_dir(cache_dir.path().join("git"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".git"))
        .collect();
    assert_eq!(mirrors.len(), 1, "one mirror, no leftover temporary clones");
}

#[test]
fn unknown_refs_bad_urls_and_missing_templates_are_clear_errors() {
    let repo = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let (url, _, _) = module_repo(repo.path());
    let cache = ModuleCache::new(cache_dir.path());

    let err = cache.resolve(&git_ref(&url, "v9")).unwrap_err();
    assert!(matches!(err, ResolveError::UnknownRef { .. }), "{err}");
    assert!(err.to_string().contains("\"v9\""), "{err}");

    for bad in ["ext::sh -c touch% /tmp/pwned", "ssh://host/repo", "--upload-pack=x"] {
        let err = cache.resolve(&git_ref(bad, "v1")).unwrap_err();
        assert!(matches!(err, ResolveError::BadUrl(_)), "{bad}: {err}");
    }

    let missing = tempfile::tempdir().unwrap();
    let err = cache.resolve(&git_ref(&format!("file://{}/nope", missing.path().display()), "v1"));
    let err = err.unwrap_err();
    assert!(matches!(err, ResolveError::Git { action: "clone", .. }), "{err}");

    let empty = tempfile::tempdir().unwrap();
    run_git(empty.path(), &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(empty.path().join("README"), "not a module").unwrap();
    run_git(empty.path(), &["add", "."]);
    run_git(empty.path(), &["commit", "--quiet", "-m", "x"]);
    let err = cache.resolve(&git_ref(&format!("file://{}", empty.path().display()), "main"));
    assert!(matches!(err.unwrap_err(), ResolveError::NoTemplate { .. }));

    let err = cache.fetch(&ModuleSource::Git { url, commit: "not-a-commit".into() }).unwrap_err();
    assert!(matches!(err, ResolveError::UnknownRef { .. }), "{err}");
}

#[test]
fn local_modules_are_pinned_by_template_hash() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TEMPLATE_FILE), V1).unwrap();
    let cache = ModuleCache::new(cache_dir.path());
    let m = cache.resolve_str(&dir.path().display().to_string()).unwrap();
    assert!(matches!(m.source, ModuleSource::Local { .. }));
    assert_eq!(cache.fetch(&m.source).unwrap().id, m.id);

    let err = cache.clone().allow_local(false).fetch(&m.source).unwrap_err();
    assert!(err.to_string().contains("only allowed on a local network"), "{err}");

    std::fs::write(dir.path().join(TEMPLATE_FILE), V2).unwrap();
    let err = cache.fetch(&m.source).unwrap_err();
    assert!(err.to_string().contains("the job was made for"), "{err}");
}
