"""What a FILE trigger's config says and must say. [pure]

``{"type": "FILE", "connectionCode": "partner-sftp", "path": "outgoing", "pattern": "*.csv",
"recursive": false, "minFileAgeSec": 10, "pollIntervalSec": 60, "detectChangesBy": "MTIME",
"maxAttempts": 3, "maxFilesPerPoll": 100}``: watch the folder ``path`` under the root of a FOLDER, SFTP
or FTP connection; runs.file_triggers polls it and starts one run per new or changed file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

CHANGE_DETECTION = ("MTIME", "CHECKSUM")

FILE_TRIGGER_PROPERTIES = {
    "connectionCode": {"type": "string", "minLength": 1,
                       "description": "FILE: the FOLDER, SFTP or FTP connection watched."},
    "path": {"type": "string", "default": ".",
             "description": "FILE: the folder watched, under the connection's root ('.' = the root)."},
    "pattern": {"type": "string", "minLength": 1, "default": "*",
                "description": "FILE: a glob the file name must match ('*.csv'; with '/' the path below the "
                "folder: 'in/*.csv'). Hidden files (.name) are never picked up."},
    "recursive": {"type": "boolean", "default": False, "description": "FILE: watch subfolders too."},
    "minFileAgeSec": {"type": "integer", "minimum": 0, "default": 10,
                      "description": "FILE: leave a file alone until it is unchanged this long (still being "
                      "uploaded)."},
    "pollIntervalSec": {"type": "integer", "minimum": 60, "default": 60,
                        "description": "FILE: how often the folder is looked at (whole minutes; at least 60)."},
    "detectChangesBy": {"enum": list(CHANGE_DETECTION), "default": "MTIME",
                        "description": "FILE: a file is new or changed when its size or modification time "
                        "(MTIME) or its SHA-256 (CHECKSUM: reads every file at each poll) is not seen before."},
    "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 100, "default": 3,
                    "description": "FILE: runs for one version of a file before it is given up (a failed run "
                    "is retried at the next poll)."},
    "maxFilesPerPoll": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100,
                        "description": "FILE: at most this many runs started per poll; the rest wait for the next."},
}


@dataclass(frozen=True)
class FileWatch:
    key: str
    connection_code: str
    folder: str
    pattern: str
    recursive: bool
    min_age_sec: int
    poll_interval_sec: int
    detect_by: str
    max_attempts: int
    max_files: int

    @property
    def poll_minutes(self) -> int:
        return max(1, math.ceil(self.poll_interval_sec / 60))


def _int(config: dict, name: str, default: int, lo: int, hi: int | None = None) -> tuple[int | None, str | None]:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        return None, f"{name} must be a whole number {bound}"
    return value, None


def file_trigger_problems(config: dict) -> list[tuple[str, str]]:
    """(field, message) for a FILE trigger's config; empty when it can be watched."""
    problems: list[tuple[str, str]] = []
    code = config.get("connectionCode")
    if not isinstance(code, str) or not code.strip():
        problems.append(("connectionCode", "a FILE trigger needs connectionCode: the FOLDER, SFTP or FTP "
                                           "connection to watch"))
    path = config.get("path", ".")
    if not isinstance(path, str) or ".." in path.replace("\\", "/").split("/"):
        problems.append(("path", "path must be a folder under the connection's root, without '..'"))
    pattern = config.get("pattern", "*")
    if not isinstance(pattern, str) or not pattern.strip():
        problems.append(("pattern", "pattern must be a glob such as '*.csv'"))
    policy = str(config.get("detectChangesBy") or "MTIME").upper()
    if policy not in CHANGE_DETECTION:
        problems.append(("detectChangesBy", f"detectChangesBy must be one of {', '.join(CHANGE_DETECTION)}"))
    for name, default, lo, hi in (("minFileAgeSec", 10, 0, None), ("pollIntervalSec", 60, 60, None),
                                  ("maxAttempts", 3, 1, 100), ("maxFilesPerPoll", 100, 1, 10000)):
        _, message = _int(config, name, default, lo, hi)
        if message:
            problems.append((name, message))
    return problems


def file_watch(key: str, config: dict) -> FileWatch:
    """The watch a valid FILE trigger config describes (check it with :func:`file_trigger_problems` first)."""
    return FileWatch(
        key=key,
        connection_code=config["connectionCode"].strip(),
        folder=config.get("path") or ".",
        pattern=config.get("pattern") or "*",
        recursive=bool(config.get("recursive")),
        min_age_sec=config.get("minFileAgeSec", 10),
        poll_interval_sec=config.get("pollIntervalSec", 60),
        detect_by=str(config.get("detectChangesBy") or "MTIME").upper(),
        max_attempts=config.get("maxAttempts", 3),
        max_files=config.get("maxFilesPerPoll", 100),
    )
