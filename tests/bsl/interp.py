"""Executes parsed BSL: statements, expressions, calls between modules, exceptions.

Values and platform functions live in values.py and platform1c.py; the add-in objects in
addin.py. Anything outside the subset raises `Unsupported`, which no Попытка catches.
"""
import datetime
from decimal import Decimal, getcontext

from errors import BslException, ErrorInfo, Unsupported
from values import UNDEFINED, Binary, to_string, type_name

getcontext().prec = 38  # 1C numbers carry up to 38 digits


class Cell:
    """A variable: parameters passed by reference share the caller's cell."""
    __slots__ = ("value",)

    def __init__(self, value=UNDEFINED):
        self.value = value


class Frame:
    def __init__(self, module, method, cells):
        self.module, self.method, self.cells = module, method, cells
        self.line = method.line if method else 0
        self.handling = []  # exceptions whose Исключение blocks run in this frame, innermost last


class BreakSignal(Exception):
    pass


class ContinueSignal(Exception):
    pass


class ReturnSignal(Exception):
    def __init__(self, value):
        self.value = value


class Interpreter:
    def __init__(self, platform, trace):
        self.platform = platform  # global context: functions, constructors, enums
        self.trace = trace
        self.modules = {}  # lower-case name -> Module
        self.module_cells = {}  # lower-case module name -> {lower-case var: Cell}
        self.handling = []  # every exception being handled, innermost last (ИнформацияОбОшибке)
        self.covered = set()  # (module source, site index)
        self.traced = set()  # lower-case names of procedures whose calls are traced
        self.depth = 0

    def add_module(self, module):
        self.modules[module.name.lower()] = module
        self.module_cells[module.name.lower()] = {v: Cell() for v in module.vars}

    # ---- errors ----
    def where(self, frame):
        return f"{frame.module.name}:{frame.line}"

    def error(self, frame, text):
        """A 1C runtime exception raised at the statement being executed."""
        return BslException(ErrorInfo(text, frame.module.presentation, frame.line,
                                      frame.module.lines.get(frame.line, "")))

    # ---- calls ----
    def call_method(self, method, args, frame, want_value):
        """Calls a procedure or function with `args`: Cells (by reference), values, or None for
        an omitted argument."""
        if want_value and not method.is_function:
            raise Unsupported(f"{self.where(frame)}: procedure {method.name} used as a function")
        if len(args) > len(method.params):
            raise Unsupported(f"{self.where(frame)}: too many arguments for {method.name}")
        cells = {name: Cell() for name in method.locals}
        for i, (pname, byval, default) in enumerate(method.params):
            arg = args[i] if i < len(args) else None
            if arg is None:
                if default is None:
                    raise Unsupported(f"{self.where(frame)}: argument {pname} of {method.name} "
                                      "has no default and is omitted")
                cells[pname.lower()] = Cell(default.value)
            elif isinstance(arg, Cell) and not byval:
                cells[pname.lower()] = arg
            else:
                cells[pname.lower()] = Cell(arg.value if isinstance(arg, Cell) else arg)
        if method.name.lower() in self.traced:
            self.trace({"event": "proc", "proc": f"{method.module.name}.{method.name}",
                        "args": [self.platform.trace_value(cells[p.lower()].value)
                                 for p, _, _ in method.params]})
        self.depth += 1
        if self.depth > 200:
            raise Unsupported(f"{self.where(frame)}: calls nested too deep")
        inner = Frame(method.module, method, cells)
        try:
            self.exec_block(method.body, inner)
        except ReturnSignal as r:
            return r.value
        except (BreakSignal, ContinueSignal):
            raise Unsupported(f"{method.module.name}:{inner.line}: Прервать/Продолжить outside a "
                              "loop")
        finally:
            self.depth -= 1
        return UNDEFINED if method.is_function else None

    def run_body(self, module):
        """Runs a module's body statements (README snippets) in the module's own variables."""
        frame = Frame(module, None, self.module_cells[module.name.lower()])
        self.exec_block(module.body, frame)

    def run_entry(self, module_name, proc, args=()):
        module = self.modules.get(module_name.lower())
        method = module and module.methods.get(proc.lower())
        if method is None or not method.export:
            raise Unsupported(f"no exported procedure {module_name}.{proc}")
        frame = Frame(module, None, {})
        return self.call_method(method, list(args), frame, False)

    # ---- statements ----
    def exec_block(self, body, frame):
        for st in body:
            frame.line = st.line
            getattr(self, "st_" + st.kind)(st, frame)

    def st_assign(self, st, frame):
        value = self.eval(st.expr, frame)
        t = st.target
        if t.kind == "var":
            self.cell(t.name, frame).value = value
        elif t.kind == "field":
            self.platform.set_field(self.eval(t.obj, frame), t.name, value, frame)
        else:
            self.platform.set_index(self.eval(t.obj, frame), self.eval(t.index, frame), value,
                                    frame)

    def st_call_stmt(self, st, frame):
        self.eval_call(st.call, frame, want_value=False)

    def st_if(self, st, frame):
        for cond, body in st.branches:
            if self.truth(self.eval(cond, frame), frame):
                self.exec_block(body, frame)
                return
        self.exec_block(st.else_body, frame)

    def loop_body(self, body, frame):
        """Runs one iteration; False when Прервать ended the loop."""
        try:
            self.exec_block(body, frame)
        except BreakSignal:
            return False
        except ContinueSignal:
            pass
        return True

    def st_while(self, st, frame):
        while self.truth(self.eval(st.cond, frame), frame):
            if not self.loop_body(st.body, frame):
                return

    def st_foreach(self, st, frame):
        coll = self.eval(st.coll, frame)
        for item in self.platform.iterate(coll, frame):
            self.cell(st.name, frame).value = item
            if not self.loop_body(st.body, frame):
                return

    def st_for(self, st, frame):
        start, end = self.eval(st.start, frame), self.eval(st.end, frame)
        if not (isinstance(start, Decimal) and isinstance(end, Decimal)):
            raise self.error(frame, "Преобразование значения к типу Число не может быть "
                                    "выполнено")
        cell = self.cell(st.name, frame)
        cell.value = start
        while cell.value <= end:
            if not self.loop_body(st.body, frame):
                return
            cell.value += 1

    def st_try(self, st, frame):
        try:
            self.exec_block(st.body, frame)
        except BslException as e:
            frame.handling.append(e)
            self.handling.append(e)
            try:
                self.exec_block(st.handler, frame)
            finally:
                frame.handling.pop()
                self.handling.pop()

    def st_raise(self, st, frame):
        if st.expr is None:
            # Re-raises the exception of the enclosing Исключение block, unchanged.
            if not frame.handling:
                raise Unsupported(f"{self.where(frame)}: ВызватьИсключение without text outside "
                                  "an Исключение block")
            raise frame.handling[-1]
        raise self.error(frame, to_string(self.eval(st.expr, frame)))

    def st_return(self, st, frame):
        raise ReturnSignal(None if st.expr is None else self.eval(st.expr, frame))

    def st_break(self, st, frame):
        raise BreakSignal()

    def st_continue(self, st, frame):
        raise ContinueSignal()

    # ---- names ----
    def cell(self, name, frame):
        key = name.lower()
        cell = frame.cells.get(key)
        if cell is None:
            cell = self.module_cells[frame.module.name.lower()].get(key)
        if cell is None:
            raise Unsupported(f"{self.where(frame)}: Переменная не определена ({name})")
        return cell

    def has_variable(self, name, frame):
        key = name.lower()
        return key in frame.cells or key in self.module_cells[frame.module.name.lower()]

    # ---- expressions ----
    def eval(self, e, frame):
        return getattr(self, "ex_" + e.kind)(e, frame)

    def ex_const(self, e, frame):
        return e.value

    def ex_var(self, e, frame):
        if self.has_variable(e.name, frame):
            return self.cell(e.name, frame).value
        value = self.platform.global_value(e.name)
        if value is None:
            raise Unsupported(f"{self.where(frame)}: Переменная не определена ({e.name})")
        return value

    def ex_field(self, e, frame):
        return self.platform.get_field(self.eval(e.obj, frame), e.name, frame)

    def ex_index(self, e, frame):
        return self.platform.get_index(self.eval(e.obj, frame), self.eval(e.index, frame), frame)

    def ex_call(self, e, frame):
        return self.eval_call(e, frame, want_value=True)

    ex_member_call = ex_call

    def ex_new(self, e, frame):
        self.covered.add((frame.module.source, e.site))
        name = e.type_name if e.type_expr is None else self.eval(e.type_expr, frame)
        if not isinstance(name, str):
            raise self.error(frame, "Тип не определен")
        args = [UNDEFINED if a is None else self.eval(a, frame) for a in e.args]
        return self.platform.new(name, args, frame)

    def args_for_user_method(self, args, frame):
        out = []
        for a in args:
            if a is None:
                out.append(None)
            elif a.kind == "var" and self.has_variable(a.name, frame):
                out.append(self.cell(a.name, frame))  # by reference, as 1C passes variables
            else:
                out.append(self.eval(a, frame))
        return out

    def eval_call(self, e, frame, want_value):
        self.covered.add((frame.module.source, e.site))
        if e.kind == "call":
            method = frame.module.methods.get(e.name.lower())
            if method is not None:
                args = self.args_for_user_method(e.args, frame)
                return self.call_method(method, args, frame, want_value)
            args = [None if a is None else self.eval(a, frame) for a in e.args]
            return self.platform.call_function(e.name, args, frame, want_value)
        # Module.Method(...) where Module names a common module, not a variable.
        if e.obj.kind == "var" and not self.has_variable(e.obj.name, frame) \
                and e.obj.name.lower() in self.modules:
            module = self.modules[e.obj.name.lower()]
            method = module.methods.get(e.name.lower())
            if method is None or not method.export:
                raise Unsupported(f"{self.where(frame)}: Метод объекта не обнаружен "
                                  f"({e.obj.name}.{e.name}): not an exported procedure or "
                                  "function of that common module")
            args = self.args_for_user_method(e.args, frame)
            return self.call_method(method, args, frame, want_value)
        obj = self.eval(e.obj, frame)
        args = [None if a is None else self.eval(a, frame) for a in e.args]
        return self.platform.call_member(obj, e.name, args, frame, want_value)

    def truth(self, v, frame):
        if isinstance(v, bool):
            return v
        if isinstance(v, Decimal):
            return v != 0
        raise self.error(frame, "Преобразование значения к типу Булево не может быть выполнено")

    def ex_not(self, e, frame):
        return not self.truth(self.eval(e.e, frame), frame)

    def ex_and(self, e, frame):
        return self.truth(self.eval(e.a, frame), frame) and self.truth(self.eval(e.b, frame), frame)

    def ex_or(self, e, frame):
        return self.truth(self.eval(e.a, frame), frame) or self.truth(self.eval(e.b, frame), frame)

    def ex_ternary(self, e, frame):
        return self.eval(e.a if self.truth(self.eval(e.c, frame), frame) else e.b, frame)

    def ex_unary(self, e, frame):
        v = self.eval(e.e, frame)
        if not isinstance(v, Decimal):
            raise self.error(frame, "Преобразование значения к типу Число не может быть "
                                    "выполнено")
        return -v if e.op == "-" else v

    def ex_binary(self, e, frame):
        a, b = self.eval(e.a, frame), self.eval(e.b, frame)
        op = e.op
        if op in ("=", "<>"):
            same = equal(a, b)
            return same if op == "=" else not same
        if op in ("<", ">", "<=", ">="):
            return self.compare(op, a, b, frame)
        return self.arithmetic(op, a, b, frame)

    def compare(self, op, a, b, frame):
        kinds = (bool, Decimal, str, datetime.datetime)
        if not any(isinstance(a, k) and isinstance(b, k) for k in kinds) or \
                isinstance(a, bool) != isinstance(b, bool):
            raise self.error(frame, "Операция сравнения на больше-меньше допустима только для "
                                    "значений совпадающих примитивных типов (Булево, Число, "
                                    "Строка, Дата)")
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def arithmetic(self, op, a, b, frame):
        num = (lambda v: isinstance(v, Decimal))
        date = (lambda v: isinstance(v, datetime.datetime))
        if op == "+" and isinstance(a, str):
            return a + to_string(b)
        if op == "+" and num(a) and isinstance(b, str):
            b = self.number_from_string(b, frame)
        if num(a) and num(b):
            if op in ("/", "%") and b == 0:
                raise self.error(frame, "Деление на 0")
            return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                    "/": lambda: a / b, "%": lambda: a % b}[op]()
        if date(a) and num(b) and op in ("+", "-"):
            if b != b.to_integral_value():
                raise Unsupported(f"{self.where(frame)}: a date shifted by a fraction of a "
                                  "second")
            seconds = int(b) if op == "+" else -int(b)
            return a + datetime.timedelta(seconds=seconds)
        if date(a) and date(b) and op == "-":
            return Decimal(int((a - b).total_seconds()))
        raise Unsupported(f"{self.where(frame)}: {type_name(a)} {op} {type_name(b)} is not "
                          "modelled by the runner")

    def number_from_string(self, s, frame):
        try:
            return Decimal(s.strip())
        except Exception:
            raise self.error(frame, "Преобразование значения к типу Число не может быть "
                                    "выполнено") from None


def equal(a, b):
    """1C's `=`: primitive values by type and value, objects by identity."""
    primitive = (bool, str, Decimal, datetime.datetime)
    if isinstance(a, primitive) or isinstance(b, primitive):
        return type(a) is type(b) and a == b
    if isinstance(a, Binary) and isinstance(b, Binary):
        return a.data == b.data
    # Singletons, enumeration values and types compare as themselves; objects by identity.
    return a == b
