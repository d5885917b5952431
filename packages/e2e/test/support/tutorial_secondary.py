#!/usr/bin/env python3
"""A stand-in for the tutorial's Python secondary (RpiBasicSecondaryThread),
standard library only: it connects, asks for its uuid, sends node_baseinfo,
asks for the primary's info, then sends keep-alives and vitals forever.

Usage: tutorial_secondary.py HOST PORT HOSTNAME [KEEPALIVE_S] [VITALS_S]
Every message it receives is printed on stdout as one JSON line, so a test
can follow the conversation.
"""
import json
import socket
import sys
import time

SEPARATOR = "\r"


class Connection:
    """The tutorial's DataPackager: JSON objects, each followed by \\r."""

    def __init__(self, sock):
        self.sock = sock
        self.buffer = ""

    def send(self, payload, payload_type="message"):
        self.sock.sendall((json.dumps({"type": payload_type, "payload": payload}) + SEPARATOR).encode("utf-8"))

    def receive(self):
        while SEPARATOR not in self.buffer:
            data = self.sock.recv(512)
            if not data:
                raise ConnectionError("primary closed the connection")
            self.buffer += data.decode("utf-8")
        message, self.buffer = self.buffer.split(SEPARATOR, 1)
        parsed = json.loads(message)
        print(json.dumps(parsed), flush=True)
        return parsed


def main():
    host, port, hostname = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    keepalive_s = float(sys.argv[4]) if len(sys.argv) > 4 else 5.0
    vitals_s = float(sys.argv[5]) if len(sys.argv) > 5 else 60.0
    conn = Connection(socket.create_connection((host, port)))
    conn.send("uuid", "info")
    uuid = conn.receive()["payload"]
    conn.send({
        "hostname": hostname,
        "ram": 4 * 1024 ** 3,
        "swap": 100 * 1024 ** 2,
        "cpu": "ARMv7 Processor rev 3 (v7l)",
        "cpu_cores": 4,
        "cpu_frequency_max": 1500.0,
        "cpu_frequency_min": 600.0,
    }, "node_baseinfo")
    conn.send("node_baseinfo", "info")
    conn.receive()
    conn.send("secondary_details", "info")
    conn.receive()
    conn.send("something_else", "info")
    conn.receive()
    vitals_sent = 0.0
    while True:
        if vitals_sent + vitals_s < time.time():
            conn.send({
                "cpu_percentage": 12.5,
                "cpu_frequency": 1500.0,
                "ram_free": 3 * 1024 ** 3,
                "swap_free": 100 * 1024 ** 2,
                "cpu_temperature": 51.1,
            }, "vitals")
            vitals_sent = time.time()
        conn.send("I am still alive, client: {}".format(uuid))
        time.sleep(keepalive_s)


if __name__ == "__main__":
    main()
