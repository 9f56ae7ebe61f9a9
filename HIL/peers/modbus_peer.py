#!/usr/bin/env python3
"""A Modbus device for tests and benches, independent of the controller's code.

  normal   pymodbus (PyPI) serves holding and input registers over TCP or RTU;
  silent   accepts TCP connections and never answers (a dead device);
  garbage  answers every TCP request with bytes that are not Modbus;
  slow     answers correctly over TCP, after --delay-ms.

Prints one line "listening HOST:PORT" (TCP) or "listening DEVICE" (RTU) once ready.
"""
import argparse
import asyncio
import logging
import os
import socket
import struct
import sys
import threading
import time


def parse_registers(text):
    regs = {}
    for item in filter(None, (text or "").split(",")):
        addr, value = item.split("=")
        regs[int(addr)] = int(value) & 0xFFFF
    return regs


def serve_pymodbus(args, holding, inputs):
    from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext, ModbusSequentialDataBlock
    from pymodbus.server import StartAsyncTcpServer, StartAsyncSerialServer
    from pymodbus.framer import FramerType

    size = args.size
    hr = [0] * size
    ir = [0] * size
    for a, v in holding.items():
        hr[a] = v
    for a, v in inputs.items():
        ir[a] = v
    # pymodbus data blocks are 1-based: block address 1 is register 0 on the wire.
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, hr), ir=ModbusSequentialDataBlock(1, ir))
    context = ModbusServerContext(devices={args.unit: device}, single=False)

    async def run():
        if args.tcp is not None:
            port = args.tcp
            if port == 0:
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
                s.close()
            task = asyncio.create_task(StartAsyncTcpServer(context=context, address=("127.0.0.1", port)))
            await wait_listening(port)
            print(f"listening 127.0.0.1:{port}", flush=True)
        else:
            task = asyncio.create_task(StartAsyncSerialServer(context=context, framer=FramerType.RTU, port=args.rtu,
                                                              baudrate=args.baud, bytesize=8, parity="N", stopbits=1))
            await asyncio.sleep(0.3)
            if task.done():
                task.result()  # raises what stopped the server (no pyserial, no such port)
            print(f"listening {args.rtu}", flush=True)
        await task

    asyncio.run(run())


async def wait_listening(port):
    for _ in range(200):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.02)


def serve_raw(args, holding):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.tcp or 0))
    srv.listen(8)
    print(f"listening 127.0.0.1:{srv.getsockname()[1]}", flush=True)

    def handle(conn):
        with conn:
            while True:
                header = conn.recv(7)
                if len(header) < 7:
                    return
                tid, pid, length, unit = struct.unpack(">HHHB", header)
                pdu = conn.recv(length - 1)
                if args.mode == "silent":
                    continue
                if args.mode == "garbage":
                    conn.sendall(os.urandom(3) + b"\xff\xff\x00\x09garbage!!")
                    continue
                time.sleep(args.delay_ms / 1000)
                fn = pdu[0]
                if fn == 3:
                    addr, count = struct.unpack(">HH", pdu[1:5])
                    body = bytes([3, 2 * count]) + b"".join(struct.pack(">H", holding.get(addr + i, 0)) for i in range(count))
                else:
                    body = bytes([fn | 0x80, 1])
                conn.sendall(struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body)

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=int, help="TCP port on 127.0.0.1 (0: pick a free one)")
    where.add_argument("--rtu", help="serial device (e.g. one end of a socat pty pair)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--unit", type=int, default=1)
    p.add_argument("--size", type=int, default=1000, help="registers served (from address 0)")
    p.add_argument("--holding", default="", help="ADDR=VALUE,... preset holding registers")
    p.add_argument("--input", default="", help="ADDR=VALUE,... preset input registers")
    p.add_argument("--mode", choices=["normal", "silent", "garbage", "slow"], default="normal")
    p.add_argument("--delay-ms", type=int, default=300)
    args = p.parse_args()
    logging.basicConfig(level=logging.ERROR)
    holding, inputs = parse_registers(args.holding), parse_registers(args.input)
    if args.mode == "normal":
        serve_pymodbus(args, holding, inputs)
    else:
        if args.tcp is None:
            sys.exit("silent/garbage/slow are TCP modes")
        serve_raw(args, holding)


if __name__ == "__main__":
    main()
