use super::*;

#[test]
fn compound_args_layout() {
    let a = compound_args(1);
    assert_eq!(a.len(), 28);
    assert_eq!(be32(&a, 4), Some(1));
    assert_eq!(be32(&a, 8), Some(2));
    assert_eq!(be32(&a, 12), Some(24));
    assert_eq!(be32(&a, 16), Some(9));
}

#[test]
fn minor_versions_asked() {
    assert_eq!(v4_minors(Version::V4), [2, 1, 0]);
    assert_eq!(v4_minors(Version::V4_0), [0]);
    assert_eq!(minors_text(&[2, 1]), "4.1, 4.2");
}

/// A server that answers every connection with `reply` and then keeps the connection open.
fn answering(reply: Vec<u8>) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&reply);
                std::thread::sleep(Duration::from_secs(5));
            });
        }
    });
    addr
}

fn call_null(addr: SocketAddr) -> (FailKind, String, Duration) {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(3);
    let r = block_on(
        async {
            let c = conn(addr, false, deadline).await.map_err(io_fail)?;
            RpcClient::new(c)
                .call::<Void, Void>(NFS_PROGRAM, 3, 0, &Void)
                .await
                .map_err(rpc_fail)
        },
        deadline,
    )
    .unwrap();
    let (kind, detail) = r.unwrap_err();
    (kind, detail, t0.elapsed())
}

/// A server claiming a record of 2 GiB - 1 bytes (which `nfs3_client` would allocate as
/// claimed): a malformed reply at once, not a wait for the deadline nor an allocation.
#[test]
fn an_absurd_record_length_is_a_verdict() {
    let addr = answering(vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
    let (kind, detail, took) = call_null(addr);
    assert_eq!(kind, FailKind::Malformed, "{detail}");
    assert!(detail.contains("a record of 2147483647 bytes"), "{detail}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // a reply whose xid is not ours: malformed too
    let mut other = 0x8000_0018u32.to_be_bytes().to_vec();
    other.extend([0u32, 1, 0, 0, 0, 0].iter().flat_map(|w| w.to_be_bytes()));
    let (kind, detail, _) = call_null(answering(other));
    assert_eq!(kind, FailKind::Malformed, "{detail}");
}

fn words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_be_bytes()).collect()
}

#[test]
fn mount_replies_are_read_within_the_protocol_limits() {
    let ok = words(&[0, 4, 0xdead_beef, 1, 1]);
    match MntReply::unpack(&mut io::Cursor::new(ok)).unwrap() {
        (MntReply::Ok(fh), 20) => assert_eq!(fh, [0xde, 0xad, 0xbe, 0xef]),
        _ => panic!("not the handle"),
    }
    match MntReply::unpack(&mut io::Cursor::new(words(&[13])))
        .unwrap()
        .0
    {
        MntReply::Refused(why) => assert_eq!(why, "MNT3ERR_ACCES"),
        MntReply::Ok(_) => panic!("not refused"),
    }
    // a handle longer than FHSIZE3, an endless flavor list: refused before allocating
    for bad in [
        words(&[0, u32::MAX]),
        words(&[0, 65]),
        words(&[0, 0, u32::MAX]),
    ] {
        assert!(MntReply::unpack(&mut io::Cursor::new(bad)).is_err());
    }
    // two exports, the first with one group
    let mut list = words(&[1, 2]);
    list.extend(b"/a\0\0");
    list.extend(words(&[1, 1]));
    list.extend(b"g\0\0\0");
    list.extend(words(&[0, 1, 2]));
    list.extend(b"/b\0\0");
    list.extend(words(&[0, 0]));
    let n = list.len();
    let (ex, read) = ExportList::unpack(&mut io::Cursor::new(list)).unwrap();
    assert_eq!((ex.0, read), (vec!["/a".to_string(), "/b".to_string()], n));
    assert!(ExportList::unpack(&mut io::Cursor::new(words(&[1, u32::MAX]))).is_err());
    assert!(ExportList::unpack(&mut io::Cursor::new(words(&[1, 0, 1, 300]))).is_err());
}

#[test]
fn refused_port_is_classified_as_refused() {
    // Port 1 on loopback: nothing listens there.
    let deadline = Instant::now() + Duration::from_secs(2);
    let e = block_on(
        conn(SocketAddr::from(([127, 0, 0, 1], 1)), false, deadline),
        deadline,
    )
    .unwrap()
    .unwrap_err();
    assert_eq!(io_kind(&e), FailKind::Refused);
}
