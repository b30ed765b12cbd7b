"""What a benchmark run shows: the terminal gets one line per finished benchmark, a progress line while a
long step runs (on a terminal only) and the final table; everything else (moto's request log, generation
and build messages, the commands' stderr) goes to the run's log file."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

log = logging.getLogger("bench")


class Console:
    def __init__(self, logfile: Path, stream: TextIO = sys.stderr) -> None:
        self.logfile = logfile
        self.stream = stream
        self.tty = stream.isatty()
        self.lines = 0
        self._label = ""
        self._started = 0.0
        self._lock = threading.Lock()
        logfile.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(logfile)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        root = logging.getLogger()
        for h in list(root.handlers):  # moto's server (werkzeug) logs every request: into the file only
            root.removeHandler(h)
        root.addHandler(handler)
        root.setLevel(logging.INFO)

    def say(self, line: str) -> None:
        """One line on the terminal (and in the log)."""
        log.info(line)
        with self._lock:
            self._clear()
            print(line, file=self.stream, flush=True)
            self.lines += 1

    def _clear(self) -> None:
        if self.tty and self._label:
            self.stream.write("\r\033[K")

    def progress(self, text: str) -> None:
        """Replace the progress line (terminal only; the log gets it too)."""
        log.info(text)
        if self.tty:
            with self._lock:
                self.stream.write(f"\r\033[K{text}")
                self.stream.flush()

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """A long step: a ticking progress line while it runs, its duration in the log after."""
        stop = threading.Event()
        self._label, self._started = label, time.monotonic()
        log.info("start: %s", label)

        def tick() -> None:
            while not stop.wait(1.0):
                if self.tty:
                    with self._lock:
                        self.stream.write(f"\r\033[K  {label} … {time.monotonic() - self._started:.0f} s")
                        self.stream.flush()

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with self._lock:
                self._clear()
            log.info("done: %s in %.1f s", label, time.monotonic() - self._started)
            self._label = ""
