use std::os::fd::AsRawFd;

use super::*;
use crate::protocol::node_cluster::{ServerQuery, Transport};

fn query(address: Option<&str>, port: i64, transport: Transport) -> ServerQuery {
    ServerQuery {
        seq: 1,
        address: address.map(str::to_string),
        port,
        transport,
        fd: None,
        ipv6_only: false,
        index: 0,
        data: None,
        readable_all: false,
        writable_all: false,
    }
}

fn port(fd: BorrowedFd<'_>) -> u16 {
    let socket = socket2::SockRef::from(&fd);
    socket.local_addr().expect("sockname").as_socket().expect("ip").port()
}

fn inode(fd: BorrowedFd<'_>) -> u64 {
    nix::sys::stat::fstat(fd).expect("fstat").st_ino
}

fn broker(groups: usize) -> PortBroker {
    PortBroker::new((0..groups).map(|_| GroupPorts::new("/".into(), &[])).collect())
}

#[test]
fn one_socket_per_group_and_address_and_port_zero_is_one_port() {
    let mut b = broker(1);
    let any = query(None, 0, Transport::Tcp4);
    let (first, port) = {
        let s = b.serve(0, &any).expect("bound");
        (inode(s.fd), port(s.fd))
    };
    assert!(port > 0);
    let again = b.serve(0, &any).expect("same");
    assert_eq!((inode(again.fd), self::port(again.fd)), (first, port));
    let same_port = query(None, i64::from(port), Transport::Tcp6);
    assert_eq!(inode(b.serve(0, &same_port).expect("found").fd), first, "asked by its port");
    let loopback = query(Some("127.0.0.1"), 0, Transport::Tcp4);
    assert_ne!(inode(b.serve(0, &loopback).expect("another").fd), first);
    assert_eq!(b.bound(0), 2, "port 0 (also asked by its number) and 127.0.0.1:0");
}

#[test]
fn another_group_cannot_take_a_groups_address() {
    let mut b = broker(2);
    let port = self::port(b.serve(0, &query(None, 0, Transport::Tcp4)).expect("bound").fd);
    let theirs = query(None, i64::from(port), Transport::Tcp4);
    assert_eq!(b.serve(1, &theirs).err(), Some(libc::EADDRINUSE));
}

#[test]
fn sockets_per_group_are_capped() {
    let mut b = broker(1);
    for i in 0..MAX_SOCKETS_PER_GROUP {
        let q = query(Some("127.0.0.1"), 0, Transport::Udp4);
        // A different wanted address each time: the loopback range.
        let q = ServerQuery { address: Some(format!("127.0.{}.{}", i / 250, 1 + i % 250)), ..q };
        b.serve(0, &q).expect("under the cap");
    }
    let one_more = query(Some("127.0.9.9"), 0, Transport::Udp4);
    assert_eq!(b.serve(0, &one_more).err(), Some(libc::EMFILE));
    assert_eq!(b.bound(0), MAX_SOCKETS_PER_GROUP);
}

#[test]
fn listen_sockets_answer_their_port_and_their_descriptor() {
    let given = backend::bind(&crate::config::ListenAddr::Tcp("127.0.0.1:0".parse().expect("a")))
        .expect("bind");
    let port: std::net::SocketAddr = given.local.parse().expect("addr");
    let mut b = PortBroker::new(vec![GroupPorts::new("/".into(), std::slice::from_ref(&given))]);
    let by_port = b.serve(0, &query(None, i64::from(port.port()), Transport::Tcp4)).expect("given");
    assert_eq!(inode(by_port.fd), inode(given.fd.as_fd()));
    let fd3 = ServerQuery { fd: Some(3), ..query(None, -1, Transport::Descriptor) };
    assert_eq!(inode(b.serve(0, &fd3).expect("fd 3").fd), inode(given.fd.as_fd()));
    let fd4 = ServerQuery { fd: Some(4), ..fd3 };
    assert_eq!(b.serve(0, &fd4).err(), Some(libc::EBADF));
    assert_eq!(b.bound(0), 0, "nothing bound on demand");
    assert!(given.fd.as_raw_fd() >= 0);
}

#[test]
fn a_host_name_is_refused_and_unknown_groups_too() {
    let mut b = broker(1);
    assert_eq!(
        b.serve(0, &query(Some("localhost"), 80, Transport::Tcp4)).err(),
        Some(libc::EINVAL)
    );
    assert_eq!(b.serve(7, &query(None, 0, Transport::Tcp4)).err(), Some(libc::EINVAL));
}
