//! Brings `lo` up in a fresh network namespace with one rtnetlink message (no `ip` needed).

use std::os::fd::AsRawFd as _;

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const IFF_UP: u32 = 1;

pub(crate) fn loopback_up() -> Result<(), Errno> {
    let index = nix::net::if_::if_nametoindex("lo")?;
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes).
    let mut msg = Vec::with_capacity(32);
    msg.extend(32u32.to_ne_bytes());
    msg.extend(RTM_NEWLINK.to_ne_bytes());
    msg.extend((NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend(1u32.to_ne_bytes());
    msg.extend(0u32.to_ne_bytes());
    msg.extend([0u8, 0u8]); // family AF_UNSPEC, padding
    msg.extend(0u16.to_ne_bytes()); // device type
    msg.extend((index as i32).to_ne_bytes());
    msg.extend(IFF_UP.to_ne_bytes()); // flags
    msg.extend(IFF_UP.to_ne_bytes()); // change mask
    sendto(
        fd.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut buf = [0u8; 512];
    let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
    if n < 20 || u16::from_ne_bytes([buf[4], buf[5]]) != NLMSG_ERROR {
        return Err(Errno::EPROTO);
    }
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if code == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(-code))
    }
}
