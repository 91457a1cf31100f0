# The probes benchmark's health endpoint: answers every request with an empty 200 and closes,
# on asyncio (one thread), counting requests; every second it writes the count so far to
# the file named by argv[2]. Listens on 127.0.0.1:argv[1].
import asyncio, sys, time

port, count_file = int(sys.argv[1]), sys.argv[2]
served = 0

async def answer(reader, writer):
    global served
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        served += 1
    except Exception:
        pass
    finally:
        writer.close()

async def report():
    while True:
        with open(count_file + ".tmp", "w") as f:
            f.write(f"{time.monotonic()} {served}\n")
        import os
        os.replace(count_file + ".tmp", count_file)
        await asyncio.sleep(1)

async def main():
    server = await asyncio.start_server(answer, "127.0.0.1", port, backlog=4096)
    asyncio.ensure_future(report())
    async with server:
        await server.serve_forever()

asyncio.run(main())
