#!/usr/bin/env python3
"""Runs BSL modules and README snippets against the kafka1c add-in in the 1C host emulator.

    run.py --host HOST1C --template ОбщийМакет.КомпонентаKafka=LIB(.so|.zip)
           [--bootstrap HOST:PORT] [--module FILE]... [--readme README.md [--let NAME=EXPR]...]
           [--entry Модуль.Процедура]... [--trace-proc NAME]... [--lang ru|en]

Each module file names its common module in a comment line `// Общий модуль Имя`. The README's
```bsl fences run first, in order, as one module body (later snippets see earlier variables);
`--let` gives the snippets' free variables. Then each --entry procedure runs.

Prints JSON lines: what the code did (add-in calls and their results, Сообщить, event log
records, calls of --trace-proc procedures), then `end` with the outcome and call-site coverage,
then the emulator's memory check. Exit status 0 only if everything ran, no exception escaped
and the emulator returned every host allocation.
"""
import argparse
import datetime
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from addin import Registry  # noqa: E402
from errors import BslException, Unsupported  # noqa: E402
from interp import Cell, Frame, Interpreter  # noqa: E402
from syntax import Module, Parser, parse, parse_into  # noqa: E402
from platform1c import Platform  # noqa: E402

MODULE_NAME = re.compile(r"^\s*//\s*Общий модуль\s+([\w]+)", re.MULTILINE)
FENCE = re.compile(r"^```bsl[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def now():
    return datetime.datetime.now().strftime("%Y-%m-%dT%H:%M:%S")


def emit(event):
    print(json.dumps(event, ensure_ascii=False), flush=True)


def load_module(path, root):
    text = open(path, encoding="utf-8-sig").read()
    m = MODULE_NAME.search(text)
    if not m:
        raise Unsupported(f"{path}: no `// Общий модуль Имя` comment names the common module")
    source = os.path.relpath(path, root)
    module = parse(m.group(1), source, text)
    if module.vars or module.body:
        raise Unsupported(f"{source}: a common module holds only procedures and functions")
    module.presentation = f"ОбщийМодуль.{module.name}.Модуль"
    return module


def load_readme(path, root):
    text = open(path, encoding="utf-8").read()
    module = Module("README", os.path.relpath(path, root))
    module.presentation = "README"
    snippets = 0
    for m in FENCE.finditer(text):
        first_line = text.count("\n", 0, m.start(1)) + 1
        parse_into(module, m.group(1), first_line)
        snippets += 1
    if not snippets:
        raise Unsupported(f"{path}: no ```bsl snippets")
    return module


def bind_lets(interp, module, lets):
    """--let NAME=EXPR: module variables the README snippets read but do not set."""
    scratch = Module("Параметры", "--let")
    scratch.presentation = "--let"
    interp.add_module(scratch)
    cells = interp.module_cells[module.name.lower()]
    for let in lets:
        name, _, expr = let.partition("=")
        p = Parser(scratch, expr)
        e = p.expr()
        if p.tok.kind != "eof":
            p.fail("--let takes one expression")
        value = interp.eval(e, Frame(scratch, None, {}))
        module.vars.add(name.strip().lower())
        cells.setdefault(name.strip().lower(), Cell()).value = value


def site_list(modules):
    out = []
    for module in modules:
        for node in module.sites:
            out.append({"id": f"{module.source}:{node.line}:{node.col + 1}",
                        "statement": module.lines.get(node.stmt_line, "").strip()})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--template", action="append", default=[])
    ap.add_argument("--bootstrap")
    ap.add_argument("--module", action="append", default=[])
    ap.add_argument("--readme")
    ap.add_argument("--let", action="append", default=[])
    ap.add_argument("--entry", action="append", default=[])
    ap.add_argument("--trace-proc", action="append", default=[])
    ap.add_argument("--lang", default="ru", choices=["ru", "en"])
    ap.add_argument("--root", default=os.getcwd(), help="paths in the output are relative to it")
    a = ap.parse_args()

    templates = dict(t.split("=", 1) for t in a.template)
    registry = Registry(a.host, templates, emit, a.lang, a.bootstrap)
    platform = Platform(registry, emit)
    interp = Interpreter(platform, emit)
    platform.interp = interp
    interp.traced = {n.lower() for n in a.trace_proc}

    ok, error, modules = False, None, []
    # Local wall-clock bounds of the run, to check the dates the code saw (1C dates are local).
    emit({"event": "start", "now": now()})
    try:
        modules = [load_module(p, a.root) for p in a.module]
        for m in modules:
            interp.add_module(m)
        if a.readme:
            readme = load_readme(a.readme, a.root)
            modules.append(readme)
            interp.add_module(readme)
            bind_lets(interp, readme, a.let)
            interp.run_body(readme)
        for entry in a.entry:
            module, _, proc = entry.partition(".")
            emit({"event": "entry", "name": entry})
            interp.run_entry(module, proc)
        ok = True
    except BslException as e:
        error = "uncaught 1C exception: " + e.info.detailed()
    except Unsupported as e:
        error = f"unsupported: {e}"
    finally:
        covered = sorted(f"{src}:{n.line}:{n.col + 1}" for m in modules for src, i in
                         interp.covered if src == m.source for n in [m.sites[i]])
        emit({"event": "end", "ok": ok, "error": error, "now": now(),
              "sites": site_list(modules), "covered": covered})
        exits = registry.finish()
        for line in exits:
            emit({"event": "host_exit", **line} if line else {"event": "host_exit",
                                                                "missing": True})
    clean = all(line and line.get("status") == 0 for line in exits)
    sys.exit(0 if ok and clean else 1)


if __name__ == "__main__":
    main()
