use super::*;

/// The mount holding `dir` as the target, with `dir` as the path for blocked calls.
fn target_of(dir: &Path) -> Target {
    let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
    let (id, dev) = sys::mount_of(&c).unwrap();
    Target {
        ids: id.map(|i| u32::try_from(i).unwrap()).into_iter().collect(),
        devs: if id.is_none() { vec![dev] } else { vec![] },
        path: dir.to_path_buf(),
        known: Vec::new(),
        tree: Vec::new(),
    }
}

/// The processes of `t` that may be ended.
fn find(t: &Target) -> Vec<User> {
    scan(t).users
}

fn find_within(t: &Target, until: Instant) -> Option<Vec<User>> {
    scan_within(t, until).map(|s| s.users)
}

fn only(users: Vec<User>, pid: i32) -> Vec<User> {
    users.into_iter().filter(|u| u.pid == pid).collect()
}

/// The share's devices are those no mount outside its tree shows: a copy stacked on it
/// is part of it, the same file system mounted elsewhere (a bind mount, another resource
/// of the server file system) is not, and its device is left out.
#[test]
fn the_share_devices_are_those_of_its_tree_alone() {
    let table = "\
1 0 8:1 / / rw - ext4 /dev/sda1 rw
27 1 0:24 / /mnt/s rw - nfs 10.0.2.2:/export rw,vers=3
28 27 0:24 / /mnt/s rw - nfs 10.0.2.2:/export rw,vers=3
29 28 0:40 / /mnt/s/t rw - tmpfs t rw
";
    let e = mountinfo::parse(table).unwrap();
    let t = Target::of(&e, &e[1]);
    assert_eq!(t.ids, [29, 28, 27]);
    assert_eq!(t.devs, [(0, 24), (0, 40)]);
    assert_eq!(t.known, [1, 27, 28, 29]);
    let bound = format!("{table}30 1 0:24 /sub /srv/sub rw - nfs 10.0.2.2:/export rw\n");
    let e = mountinfo::parse(&bound).unwrap();
    assert_eq!(Target::of(&e, &e[1]).devs, [(0, 40)]);
    // copies in another namespace's table: the mount of a share device and its tree
    let other = "\
50 49 0:24 / /mnt/s rw - nfs 10.0.2.2:/export rw
49 49 8:1 / / rw - ext4 /dev/sda1 rw
51 50 0:41 / /mnt/s/nest rw - tmpfs nest rw
52 49 0:42 / /tmp rw - tmpfs tmp rw
";
    let e = mountinfo::parse(table).unwrap();
    let t = Target::of(&e, &e[1]);
    let c = copies_in(&mountinfo::parse(other).unwrap(), &t);
    let ids: Vec<u32> = c.iter().map(|e| e.mount_id).collect();
    assert_eq!(ids, [51, 50]);
    // the device also serves /srv/sub here: a copy is known by its place or its peer group
    let e = mountinfo::parse(&bound).unwrap();
    let t = Target::of(&e, &e[1]);
    let elsewhere = "\
60 49 0:24 / /mnt/s rw - nfs 10.0.2.2:/export rw
61 49 0:24 /sub /srv/sub rw - nfs 10.0.2.2:/export rw
62 49 0:24 / /other rw master:7 - nfs 10.0.2.2:/export rw
49 49 8:1 / / rw - ext4 /dev/sda1 rw
";
    let ids: Vec<u32> = copies_in(&mountinfo::parse(elsewhere).unwrap(), &t)
        .iter()
        .map(|e| e.mount_id)
        .collect();
    assert_eq!(ids, [60]);
    let mut shared = e.clone();
    shared[1].optional = vec!["shared:7".into()];
    let t = Target::of(&shared, &shared[1]);
    let ids: Vec<u32> = copies_in(&mountinfo::parse(elsewhere).unwrap(), &t)
        .iter()
        .map(|e| e.mount_id)
        .collect();
    assert_eq!(ids, [60, 62]);
}

#[test]
fn path_prefix_matching() {
    assert!(under(b"/mnt/data", b"/mnt/data"));
    assert!(under(b"/mnt/data/x/y", b"/mnt/data"));
    assert!(under(b"/mnt/data/f (deleted)", b"/mnt/data"));
    assert!(under(b"/mnt/data/\xff", b"/mnt/data/"));
    assert!(!under(b"/mnt/database", b"/mnt/data"));
    assert!(!under(b"socket:[123]", b"/mnt/data"));
}

#[test]
fn maps_by_device() {
    let maps = "\
7f00-7f01 r--p 00000000 00:32 1234 /mnt/data/lib.so
7f02-7f03 rw-p 00000000 00:00 0 
7f04-7f05 r-xp 00000000 08:01 99 /usr/lib/libc.so.6
";
    assert!(maps_use(maps, &[(0, 0x32)]));
    assert!(maps_use(maps, &[(9, 9), (8, 1)]));
    assert!(!maps_use(maps, &[(0, 0x33)]));
    assert!(!maps_use(maps, &[]), "a path string alone never matches");
    assert!(!maps_use("7f02-7f03 rw-p 00000000 00:00 0 \n", &[(0, 0)]));
}

#[test]
fn fdinfo_mount_id() {
    assert_eq!(
        fdinfo_mount("pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t5\n"),
        Some(27)
    );
    assert_eq!(fdinfo_mount("pos:\t0\n"), None);
}

#[test]
fn never_lists_pid_1_this_process_or_its_ancestors() {
    let skip = ancestors();
    assert!(skip.contains(&1) && skip.contains(&(std::process::id() as i32)));
    assert!(skip.contains(&(std::os::unix::process::parent_id() as i32)));
    // a child with its working directory on the mount of / is found; none of those
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir("/")
        .spawn()
        .unwrap();
    let all = scan(&target_of(Path::new("/")));
    let _ = child.kill();
    let _ = child.wait();
    let found = all.users;
    assert!(found.iter().any(|u| u.pid == child.id() as i32));
    assert!(found.iter().all(|u| !skip.contains(&u.pid)));
    // this process holds it too (its root is on it): kept, never ended
    let me = std::process::id() as i32;
    assert!(all.kept.iter().any(|u| u.pid == me), "{:?}", all.kept);
}

#[test]
fn reads_the_path_of_a_blocked_system_call() {
    // a child blocked in open() of a FIFO nobody writes to
    let dir = std::env::temp_dir().join(format!("nas-blocked-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = std::process::Command::new("cat")
        .arg(&fifo)
        .current_dir("/")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let t = Target {
        path: dir.clone(),
        ..Target::default()
    };
    let mut found = false;
    for _ in 0..200 {
        if find(&t)
            .iter()
            .any(|u| u.pid == pid && u.how.iter().any(|h| h.starts_with("blocked")))
        {
            found = true;
            break;
        }
        sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    fs::remove_dir_all(&dir).unwrap();
    assert!(found, "the child blocked in open() was not found");
}

/// A helper process (this test binary run again) whose second thread blocks in open() of a
/// FIFO while its main thread sleeps: found through the thread, not the main thread.
#[test]
fn finds_a_process_whose_other_thread_is_blocked() {
    const INNER: &str = "NAS_TEST_BLOCKED_THREAD_FIFO";
    if let Some(fifo) = std::env::var_os(INNER) {
        std::thread::spawn(move || fs::File::open(fifo));
        sleep(Duration::from_secs(30));
        return;
    }
    let dir = std::env::temp_dir().join(format!("nas-thread-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "users::tests::finds_a_process_whose_other_thread_is_blocked",
            "--exact",
            "--test-threads=1",
        ])
        .env(INNER, &fifo)
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = helper.id() as i32;
    let t = Target {
        path: dir.clone(),
        ..Target::default()
    };
    let mut how = None;
    for _ in 0..300 {
        how = find(&t).into_iter().find(|u| u.pid == pid).map(|u| u.how);
        if how.is_some() {
            break;
        }
        sleep(Duration::from_millis(10));
    }
    let _ = helper.kill();
    let _ = helper.wait();
    fs::remove_dir_all(&dir).unwrap();
    let how = how.expect("the process with a thread blocked in open() was not found");
    assert!(
        how.iter()
            .any(|h| h.starts_with("blocked in a system call on")),
        "{how:?}"
    );
}

#[test]
fn another_start_time_or_an_ended_process_is_not_signalled() {
    let dir = std::env::temp_dir();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut users = only(find(&target_of(&dir)), pid);
    assert_eq!(users.len(), 1, "the child was not found");
    let start = users[0].start;
    // the same pinned process with another start time: not this one, not signalled
    users[0].start = start + 1;
    let left = terminate(
        &users,
        Duration::from_millis(50),
        Instant::now() + Duration::from_millis(200),
    );
    assert!(left.is_empty());
    assert_eq!(
        crate::child::start_time(pid),
        Some(start),
        "the process was signalled"
    );
    // ended and reaped: the pinned directory answers nothing, nothing is signalled
    users[0].start = start;
    let _ = child.kill();
    let _ = child.wait();
    assert!(!users[0].alive());
    assert!(terminate(&users, Duration::ZERO, Instant::now()).is_empty());
}

#[test]
fn find_within_answers_like_find() {
    let dir = std::env::temp_dir().join(format!("nas-within-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let t = target_of(&dir);
    let found = find_within(&t, Instant::now() + Duration::from_secs(5)).unwrap();
    assert!(found.iter().any(|u| u.pid == pid));
    // no time at all: no answer, and no waiting
    let t0 = Instant::now();
    assert!(find_within(&t, t0).is_none());
    assert!(t0.elapsed() < Duration::from_secs(1));
    let _ = child.kill();
    let _ = child.wait();
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn finds_and_terminates_a_process_with_cwd_inside() {
    let dir = std::env::temp_dir().join(format!("nas-users-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&dir)
        .spawn()
        .unwrap();
    let users = only(find(&target_of(&dir)), child.id() as i32);
    assert!(
        users[0].how.contains(&"cwd".to_string()),
        "{:?}",
        users[0].how
    );
    assert!(describe(&users).contains(&format!("{} (sleep: cwd", child.id())));
    let left = terminate(
        &users,
        Duration::from_secs(2),
        Instant::now() + Duration::from_secs(5),
    );
    let _ = child.wait();
    assert!(left.is_empty());
    fs::remove_dir_all(&dir).unwrap();
}
