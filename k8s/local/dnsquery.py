"""Ask one DNS server for the A records of a name, over UDP, with the standard library only:
`python3 dnsquery.py <server> <name>` prints one address per line, exit 1 on no answer."""

import random
import socket
import struct
import sys


def query(server: str, name: str, timeout: float = 2.0) -> list[str]:
    ident = random.randrange(1 << 16)
    header = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(header + qname + struct.pack(">HH", 1, 1), (server, 53))
        reply, _ = sock.recvfrom(4096)
    _, flags, _, answers, _, _ = struct.unpack(">HHHHHH", reply[:12])
    if flags & 0xF:  # rcode: NXDOMAIN, REFUSED, ...
        return []
    offset = 12 + len(qname) + 4
    found = []
    for _ in range(answers):
        offset += 2 if reply[offset] & 0xC0 == 0xC0 else len(qname)
        rtype, _, _, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            found.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return found


if __name__ == "__main__":
    addresses = query(sys.argv[1], sys.argv[2])
    print("\n".join(addresses))
    sys.exit(0 if addresses else 1)
