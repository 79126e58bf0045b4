"""A loopback SMTP sink for Tocsin's mail tests, built on aiosmtpd.

Listens on 127.0.0.1 (a free port, printed as "PORT <n>" on the first line
of standard output) and appends every accepted message to DIR/messages.jsonl
as one JSON object: {"n", "mail_from", "rcpt_tos", "data"}.

--hold N: the N-th DATA received (counting from 1) is never answered and
never stored; DIR/held is written when it arrives, so a test can kill the
client while the server still owes its reply.
--reject-rcpt TEXT: recipients containing TEXT are refused at RCPT with 550.
"""

import argparse
import asyncio
import json
import logging
import os

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out_dir, hold, reject):
        self.out_dir = out_dir
        self.hold = hold
        self.reject = reject
        self.received = 0
        self.stored = 0
        self.path = os.path.join(out_dir, "messages.jsonl")

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received += 1
        if self.hold is not None and self.received == self.hold:
            with open(os.path.join(self.out_dir, "held"), "w") as f:
                f.write(str(self.received))
            # Owe the reply for ever: the client is killed meanwhile.
            await asyncio.Event().wait()
        self.stored += 1
        record = {
            "n": self.stored,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 stored"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--hold", type=int)
    parser.add_argument("--reject-rcpt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    sink = Sink(args.dir, args.hold, args.reject_rcpt)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, hostname="localhost", ident="tocsin-test-sink"),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
