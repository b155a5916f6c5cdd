"""Native API add-ins for the runner, loaded and called through the 1C host emulator
(tests/host/host1c.c): ПодключитьВнешнююКомпоненту starts one emulator per library, Новый
creates an object in it, and every member access on that object is one emulator command.

What 1C does around a call is modelled here: the object gets the session's locale and interface
language when created; omitted arguments are filled by the add-in's GetParamDefValue; a call that
fails raises a 1C exception whose description is the text the add-in reported with AddError.
A member the add-in does not have, too many arguments, or a procedure used as a function stop the
run (`Unsupported`): in an example that is always a mistake, and Попытка must not hide it.
"""
import datetime
import json
import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal

from errors import BslException, ErrorInfo, Unsupported
from values import UNDEFINED, NULL, Binary, to_trace, type_name

CONNECT = {"подключить", "connect"}


def literal(v):
    """A BSL value as an emulator script argument."""
    if v is None:
        return "default"  # omitted: the emulator asks the add-in for the default
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=True)  # \uXXXX units, as the emulator reads them
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v == v.to_integral_value() else format(v, "f")
    if isinstance(v, datetime.datetime):
        return f'd"{v:%Y-%m-%d %H:%M:%S}"'
    if isinstance(v, Binary):
        return f'x"{v.data.hex()}"'
    if v is UNDEFINED:
        return "undefined"
    if v is NULL:
        return "null"
    return None


def from_variant(v, where):
    """An emulator variant (JSON) as a BSL value."""
    t = v.get("type")
    if t == "Undefined":
        return UNDEFINED
    if t == "Null":
        return NULL
    if t == "Boolean":
        return bool(v["value"])
    if t == "String":
        return v["value"]
    if t == "Number":
        n = v["value"]
        # A double is read back as its shortest decimal text, as 1C shows it.
        return Decimal(repr(float(n))) if int(v.get("vt", 0)) in (4, 5) and \
            n != n.to_integral_value() else Decimal(n)
    if t == "Date":
        return datetime.datetime.fromisoformat(v["value"])
    if t == "BinaryData":
        return Binary(bytes.fromhex(v["hex"]))
    raise Unsupported(f"{where}: the add-in returned a variant the runner does not map: {v}")


def library_from_zip(path, workdir):
    """The Linux x86_64 library a 1C template zip names in its MANIFEST.XML."""
    with zipfile.ZipFile(path) as z:
        manifest = ET.fromstring(z.read("MANIFEST.XML"))
        for c in manifest:
            if c.get("os") == "Linux" and c.get("arch") == "x86_64":
                z.extract(c.get("path"), workdir)
                return os.path.join(workdir, c.get("path"))
    raise Unsupported(f"{path}: MANIFEST.XML names no Linux x86_64 component")


class Library:
    """One loaded add-in library: an emulator process talking JSON lines."""

    def __init__(self, host, path, trace):
        self.trace = trace
        self.current = None
        # stderr goes to a file: a pipe nobody reads while calls run could fill and block.
        self.stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")
        self.proc = subprocess.Popen([host, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True, encoding="utf-8")
        first = self.proc.stdout.readline()
        self.loaded = first.startswith("{") and json.loads(first).get("ok") is True
        self.class_names = json.loads(first)["class_names"].split("|") if self.loaded else []
        if not self.loaded:
            self.proc.stdin.close()
            self.proc.wait()
            trace({"event": "attach_failed", "library": path, "stderr": self.stderr_text()})

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()[-2000:].strip()

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        while True:
            out = self.proc.stdout.readline()
            if not out:
                self.proc.wait()
                raise Unsupported(f"the host emulator exited while running {line[:80]!r}: "
                                  f"{self.stderr_text()}")
            answer = json.loads(out, parse_float=Decimal, parse_int=Decimal)
            if answer.get("cmd") == "event":
                self.trace({"event": "external_event", **answer})
                continue
            return answer

    def use(self, index):
        if self.current != index:
            answer = self.send(f"use {index}")
            if answer.get("ok") is not True:
                raise Unsupported(f"the host emulator cannot select object {index}")
            self.current = index

    def finish(self):
        """Ends the emulator as 1C ends a session; returns its memory check line."""
        self.proc.stdin.close()
        exit_line = None
        for out in self.proc.stdout:
            if out.startswith("{") and json.loads(out).get("cmd") == "exit":
                exit_line = json.loads(out)
        self.proc.wait()
        return exit_line


class Registry:
    """The add-ins a session attached: ПодключитьВнешнююКомпоненту and Новый("AddIn...")."""

    def __init__(self, host, templates, trace, lang="ru", bootstrap=None):
        self.host = host
        self.templates = {k.lower(): v for k, v in templates.items()}
        self.trace = trace
        self.lang = lang
        self.bootstrap = bootstrap
        self.loaded = {}  # template -> Library
        self.names = {}  # attached name (lower case) -> Library
        self.workdir = tempfile.mkdtemp(prefix="bsl-addin-")

    def attach(self, location, name, frame):
        if name.lower() in self.names:
            return True  # 1C: attaching the same name again succeeds at once
        path = self.templates.get(location.lower())
        if path is None:
            raise Unsupported(f"{frame.module.name}:{frame.line}: the runner was not told which "
                              f"library the template {location} holds (--template)")
        lib = self.loaded.get(location.lower())
        if lib is None:
            real = library_from_zip(path, self.workdir) if path.endswith(".zip") else path
            lib = Library(self.host, real, self.trace)
            self.loaded[location.lower()] = lib
        self.trace({"event": "attach", "at": f"{frame.module.name}:{frame.line}",
                    "template": location, "name": name, "ok": lib.loaded})
        if lib.loaded:
            self.names[name.lower()] = lib
        return lib.loaded

    def create(self, progid, frame):
        m = re.fullmatch(r"(?i)addin\.([^.]+)\.([^.]+)", progid)
        lib = m and self.names.get(m.group(1).lower())
        if lib is None or m.group(2) not in lib.class_names:
            raise BslException(ErrorInfo(f"Тип не определен ({progid})",
                                         frame.module.presentation, frame.line,
                                         frame.module.lines.get(frame.line, "")))
        answer = lib.send("new")
        if answer.get("ok") is not True:
            raise Unsupported(f"the add-in did not create {progid}: {answer}")
        lib.current = int(answer["object"])
        # 1C hands every new object the session's locale and interface language.
        for cmd in (f"locale {'ru_RU' if self.lang == 'ru' else 'en_US'}", f"uilang {self.lang}"):
            if lib.send(cmd).get("ok") is not True:
                raise Unsupported(f"the emulator refused {cmd}")
        return AddinObject(self, lib, lib.current, progid)

    def finish(self):
        return [lib.finish() for lib in self.loaded.values() if lib.loaded]


class AddinObject:
    def __init__(self, registry, lib, index, progid):
        self.registry, self.lib, self.index = registry, lib, index
        self.TYPE_NAME = progid

    def where(self, frame):
        return f"{frame.module.name}:{frame.line}"

    def raise_failure(self, answer, generic, frame):
        text = answer.get("error") or generic
        raise BslException(ErrorInfo(text, frame.module.presentation, frame.line,
                                     frame.module.lines.get(frame.line, "")))

    def record(self, frame, op, name, args, answer, result=None):
        event = {"event": "addin", "at": self.where(frame), "object": self.index, "op": op,
                 "member": name, "ok": answer.get("ok") is True}
        if args is not None:
            event["args"] = [{"type": "omitted"} if a is None else to_trace(a) for a in args]
        if result is not None:
            event["result"] = to_trace(result)
        if answer.get("error"):
            event["error"] = answer["error"]
        self.registry.trace(event)

    def get_prop(self, name, frame):
        self.lib.use(self.index)
        answer = self.lib.send(f"get {name}")
        if int(answer.get("index", -1)) < 0:
            raise Unsupported(f"{self.where(frame)}: the add-in has no property {name}")
        value = from_variant(answer["value"], self.where(frame)) if answer.get("ok") else None
        self.record(frame, "get", name, None, answer, value)
        if answer.get("ok") is not True:
            self.raise_failure(answer, f"Ошибка при получении значения атрибута контекста "
                                       f"({name})", frame)
        return value

    def set_prop(self, name, value, frame):
        arg = literal(value)
        if arg is None or value is None:
            raise Unsupported(f"{self.where(frame)}: a {type_name(value)} cannot be passed to an "
                              "add-in")
        self.lib.use(self.index)
        answer = self.lib.send(f"set {name} {arg}")
        self.record(frame, "set", name, [value], answer)
        if answer.get("ok") is not True:
            self.raise_failure(answer, f"Ошибка при установке значения атрибута контекста "
                                       f"({name})", frame)

    def call_method(self, name, args, frame, want_value):
        args = list(args)
        if name.lower() in CONNECT and args and isinstance(args[0], str) and \
                self.registry.bootstrap:
            args[0] = substitute_bootstrap(args[0], self.registry.bootstrap)
        texts = [literal(a) for a in args]
        if any(t is None for t in texts):
            bad = next(a for a, t in zip(args, texts) if t is None)
            raise self.registry_error(frame, f"Неверный тип параметра: {type_name(bad)} не "
                                             "передаётся во внешнюю компоненту")
        self.lib.use(self.index)
        answer = self.lib.send(" ".join(["call", name] + texts))
        if int(answer.get("index", -1)) < 0:
            raise Unsupported(f"{self.where(frame)}: the add-in has no method {name}")
        if len(args) > int(answer["nparams"]):
            raise Unsupported(f"{self.where(frame)}: {name} takes {answer['nparams']} arguments, "
                              f"given {len(args)}")
        if want_value and answer.get("returns") is not True:
            raise Unsupported(f"{self.where(frame)}: {name} returns no value but is used as a "
                              "function")
        value = from_variant(answer["ret"], self.where(frame)) if "ret" in answer and \
            answer.get("ok") else None
        self.record(frame, "call", name, args, answer, value)
        if answer.get("ok") is not True:
            self.raise_failure(answer, f"Ошибка при вызове метода контекста ({name})", frame)
        return value if want_value else None

    def registry_error(self, frame, text):
        return BslException(ErrorInfo(text, frame.module.presentation, frame.line,
                                      frame.module.lines.get(frame.line, "")))


BOOTSTRAP = re.compile(r'("bootstrap\.servers"\s*:\s*")([^"]*)(")')


def substitute_bootstrap(settings, bootstrap):
    """Points an example's Connect settings at the test broker: the value of bootstrap.servers
    in a JSON object, or the whole text when it is a plain `host:port,...` list. Nothing else
    in the settings changes."""
    if BOOTSTRAP.search(settings):
        return BOOTSTRAP.sub(lambda m: m.group(1) + bootstrap + m.group(3), settings, count=1)
    if re.fullmatch(r"[\w.\-]+:\d+(,[\w.\-]+:\d+)*", settings.strip()):
        return bootstrap
    return settings
