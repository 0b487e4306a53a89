#!/usr/bin/env python3
"""N keep-alive connections to each of two URLs, one request each, held open together, then
closed: prints the peak RSS (MiB) of the two processes while they were open.

    bench-connections.py N AUTH_URL ROOMS_URL ROOMS_AUTHORIZATION AUTH_PID ROOMS_PID

Loopback only; stops by itself (each connection has a 10 s deadline)."""

import asyncio
import os
import sys
import urllib.parse


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


async def one(url, authorization, opened, refused, release):
    u = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(u.hostname, u.port), 10)
    if os.environ.get("CONNECTIONS_IDLE"):
        # Connected, nothing sent: what an idle connection costs.
        opened.append(1)
        await release.wait()
        writer.close()
        return
    path = u.path + (f"?{u.query}" if u.query else "")
    head = f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
    if authorization:
        head += f"Authorization: {authorization}\r\n"
    writer.write((head + "\r\n").encode())
    await writer.drain()
    # Read the status line and headers, then the body by Content-Length.
    status = await asyncio.wait_for(reader.readline(), 10)
    if not status.split(b" ")[1:2] == [b"200"]:
        refused.append(status.decode(errors="replace").strip())
    length = 0
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line in (b"\r\n", b""):
            break
    if length:
        await asyncio.wait_for(reader.readexactly(length), 10)
    opened.append(1)
    await release.wait()
    writer.close()


async def main(n, auth_url, rooms_url, rooms_auth, auth_pid, rooms_pid):
    opened, refused, release = [], [], asyncio.Event()
    tasks = [asyncio.create_task(one(auth_url, "", opened, refused, release)) for _ in range(n)]
    tasks += [
        asyncio.create_task(one(rooms_url, rooms_auth, opened, refused, release)) for _ in range(n)
    ]
    peak_a = peak_r = 0
    for _ in range(100):
        await asyncio.sleep(0.1)
        peak_a, peak_r = max(peak_a, rss_mib(auth_pid)), max(peak_r, rss_mib(rooms_pid))
        if len(opened) == 2 * n or all(t.done() for t in tasks):
            break
    await asyncio.sleep(0.5)
    peak_a, peak_r = max(peak_a, rss_mib(auth_pid)), max(peak_r, rss_mib(rooms_pid))
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(peak_a, peak_r)
    if len(opened) < 2 * n:
        print(f"only {len(opened)} of {2 * n} connections answered", file=sys.stderr)
    if refused:
        # Memory measured on error answers says nothing about the requests it is meant for.
        print(f"{len(refused)} answers were not 200, e.g. {refused[0]!r}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    a = sys.argv
    asyncio.run(main(int(a[1]), a[2], a[3], a[4], int(a[5]), int(a[6])))
