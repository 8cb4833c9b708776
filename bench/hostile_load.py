#!/usr/bin/env python3
"""Holds idle and slow connections open against an HTTP listener, for the
SCIM benchmark's run under load (bench/scim_bench.sh).

  hostile_load.py PORT [--idle N] [--slow N] [--ready FILE]

--idle N: N keep-alive connections that each ask GET /healthz once, read the
answer, then say nothing (reopened if the server closes them).
--slow N: N connections that send a request head one byte per second and
never finish it (reopened when the server answers 408 and closes).

Connections come from 127.0.0.3 up, at most 200 per address, so the
listener's per-address cap (256) does not refuse them. Writes a line to
--ready once every connection is open, then runs until killed; prints how
many connections were opened and closed by the server.
"""
import argparse
import asyncio
import signal
import sys

PER_ADDRESS = 200


def source(i):
    return "127.0.0.%d" % (3 + i // PER_ADDRESS)


class Counts:
    opened = 0
    closed_by_server = 0


async def open_from(port, index):
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source(index), 0))


async def idle(port, index, counts, ready):
    first = True
    while True:
        try:
            reader, writer = await open_from(port, index)
            counts.opened += 1
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if first:
                ready.release()
                first = False
            await reader.read(1)  # returns at EOF: the server closed it
            counts.closed_by_server += 1
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.5)


async def slow(port, index, counts, ready):
    first = True
    while True:
        try:
            reader, writer = await open_from(port, index)
            counts.opened += 1
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n")
            await writer.drain()
            if first:
                ready.release()
                first = False
            while True:
                writer.write(b"X")
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), timeout=1.0)
                    if not data or b"408" in data:
                        counts.closed_by_server += 1
                        break
                except asyncio.TimeoutError:
                    pass
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.5)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--ready")
    args = parser.parse_args()
    counts = Counts()
    ready = asyncio.Semaphore(0)
    total = args.idle + args.slow
    tasks = [asyncio.create_task(idle(args.port, i, counts, ready)) for i in range(args.idle)]
    tasks += [
        asyncio.create_task(slow(args.port, args.idle + i, counts, ready)) for i in range(args.slow)
    ]
    for _ in range(total):
        await ready.acquire()
    if args.ready:
        with open(args.ready, "w") as f:
            f.write("%d\n" % total)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    print("hostile_load: %d connections opened, %d closed by the server"
          % (counts.opened, counts.closed_by_server), file=sys.stderr)
    for t in tasks:
        t.cancel()


if __name__ == "__main__":
    asyncio.run(main())
