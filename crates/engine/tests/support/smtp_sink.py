"""A real SMTP server for the notification tests (aiosmtpd).

Every message it is handed is written, before the server answers, as
`<n>.json` in OUT (sender, recipients, Message-ID, Booking-Delivery,
Booking-Event, subject, plain-text body) with its attachments saved next to
it. With --hold-first S, the answer to the first message waits S seconds:
the test kills the engine while it waits, as a crash between the server
taking a message and the sender hearing so.

    python3 smtp_sink.py --port 2525 --out /tmp/mails [--hold-first 12]
"""

import argparse
import email
import json
import os
import signal
import threading
import time
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, hold_first):
        self.out = out
        self.hold_first = hold_first
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "message_id": msg["Message-ID"],
            "delivery": msg["Booking-Delivery"],
            "event": msg["Booking-Event"],
            "to": msg["To"],
            "subject": msg["Subject"],
            "body": body.get_content() if body is not None else "",
            "attachments": [],
        }
        for i, part in enumerate(msg.iter_attachments()):
            path = os.path.join(self.out, f"{n}-{i}.bin")
            with open(path, "wb") as f:
                f.write(part.get_payload(decode=True))
            record["attachments"].append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "path": path,
                }
            )
        # Written whole, then renamed: the test never reads half a record.
        tmp = os.path.join(self.out, f".{n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{n}.json"))
        if n == 1 and self.hold_first > 0:
            import asyncio

            await asyncio.sleep(self.hold_first)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--hold-first", type=float, default=0)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    controller = Controller(Sink(a.out, a.hold_first), hostname="127.0.0.1", port=a.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        time.sleep(0.2)
    controller.stop()


if __name__ == "__main__":
    main()
