"""Parser for the runner's BSL subset: a module is module variables, procedures and functions,
then module body statements (README snippets are bodies). Every call and `Новый` is recorded
as a call site, so a run can tell which calls of an example never ran.
"""
from lexer import tokenize
from errors import Unsupported
from values import UNDEFINED, NULL


class Node:
    def __init__(self, kind, line, **fields):
        self.kind, self.line = kind, line
        self.__dict__.update(fields)

    def __repr__(self):
        return f"{self.kind}@{self.line}"


class Method:
    def __init__(self, name, params, export, is_function, body, line, module):
        self.name, self.params, self.export = name, params, export
        self.is_function, self.body, self.line, self.module = is_function, body, line, module
        self.locals = set()  # lower-case names of variables this method declares


class Module:
    def __init__(self, name, source):
        self.name, self.source = name, source
        self.lines = {}  # line number -> source text, for error presentations
        self.vars = set()  # lower-case names of module variables
        self.methods = {}  # lower-case name -> Method
        self.body = []
        self.sites = []  # call sites: Node of kind call/member_call/new


BLOCK_ENDS = {"endif", "elsif", "else", "enddo", "endtry", "except", "endprocedure",
              "endfunction", "eof", "procedure", "function"}


class Parser:
    def __init__(self, module, text, first_line=1):
        self.m = module
        for n, line in enumerate(text.split("\n")):
            module.lines[first_line + n] = line
        self.toks = tokenize(text, module.source, first_line)
        self.i = 0
        self.method = None  # the Method being parsed, for local declarations
        self.stmt_line = None  # first line of the statement being parsed

    # ---- token helpers ----
    @property
    def tok(self):
        return self.toks[self.i]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, what, tok=None):
        tok = tok or self.tok
        seen = "end of text" if tok.kind == "eof" else repr(tok.value)
        raise Unsupported(f"{self.m.source}:{tok.line}: {what}, found {seen}")

    def expect_kw(self, *names):
        if not self.tok.is_kw(*names):
            self.fail(f"expected {'/'.join(names)}")
        return self.next()

    def expect_op(self, op):
        if not self.tok.is_op(op):
            self.fail(f"expected '{op}'")
        return self.next()

    def ident(self):
        if self.tok.kind != "id":
            self.fail("expected a name")
        return self.next().value

    def declare(self, name):
        """An assignment declares a variable unless the name is already a module variable."""
        if self.method is None:
            self.m.vars.add(name.lower())
        elif name.lower() not in self.m.vars:
            self.method.locals.add(name.lower())

    # ---- module ----
    def parse_module(self):
        while self.tok.is_kw("var"):
            self.var_decl()
        while self.tok.is_kw("procedure", "function"):
            self.parse_method()
        self.m.body.extend(self.block(set()))
        if self.tok.kind != "eof":
            self.fail("procedures and functions must come before the module's statements")
        return self.m

    def var_decl(self):
        self.next()
        while True:
            name = self.ident().lower()
            (self.method.locals if self.method else self.m.vars).add(name)
            if self.tok.is_kw("export"):
                self.next()
            if not self.tok.is_op(","):
                break
            self.next()
        self.expect_op(";")

    def parse_method(self):
        start = self.next()
        is_function = start.value == "function"
        name = self.ident()
        method = Method(name, [], False, is_function, [], start.line, self.m)
        self.method = method
        self.expect_op("(")
        while not self.tok.is_op(")"):
            byval = bool(self.tok.is_kw("val") and self.next())
            pname = self.ident()
            default = None
            if self.tok.is_op("="):
                self.next()
                default = self.default_value()
            method.params.append((pname, byval, default))
            method.locals.add(pname.lower())
            if not self.tok.is_op(")"):
                self.expect_op(",")
        self.next()
        if self.tok.is_kw("export"):
            self.next()
            method.export = True
        while self.tok.is_kw("var"):
            self.var_decl()
        method.body = self.block({"endfunction" if is_function else "endprocedure"})
        self.next()
        if self.tok.is_op(";"):
            self.next()
        if name.lower() in self.m.methods:
            self.fail(f"{name} is defined twice", start)
        self.m.methods[name.lower()] = method
        self.method = None

    def default_value(self):
        """Defaults are constants in 1C: a literal, optionally negated."""
        neg = self.tok.is_op("-") and self.next()
        e = self.primary()
        if e.kind != "const" or (neg and e.value.__class__.__name__ != "Decimal"):
            self.fail("a parameter default must be a constant")
        if neg:
            e.value = -e.value
        return e

    # ---- statements ----
    def at_block_end(self):
        t = self.tok
        return t.kind == "eof" or (t.kind == "kw" and t.value in BLOCK_ENDS)

    def block(self, ends):
        """Statements up to one of the keywords `ends` (none: a module body, up to its end)."""
        body = []
        while True:
            while self.tok.is_op(";"):
                self.next()
            if self.at_block_end():
                if ends and not self.tok.is_kw(*ends):
                    self.fail(f"expected {'/'.join(sorted(ends))}")
                return body
            body.append(self.statement())
            if not (self.tok.is_op(";") or self.at_block_end()):
                self.fail("expected ';'")

    def statement(self):
        outer = self.stmt_line
        self.stmt_line = self.tok.line
        try:
            return self.statement_here()
        finally:
            self.stmt_line = outer

    def statement_here(self):
        t = self.tok
        line = t.line
        if t.is_kw("if"):
            return self.if_statement()
        if t.is_kw("while"):
            self.next()
            cond = self.expr()
            self.expect_kw("do")
            body = self.block({"enddo"})
            self.next()
            return Node("while", line, cond=cond, body=body)
        if t.is_kw("for"):
            return self.for_statement()
        if t.is_kw("try"):
            self.next()
            body = self.block({"except"})
            self.next()
            handler = self.block({"endtry"})
            self.next()
            return Node("try", line, body=body, handler=handler)
        if t.is_kw("raise"):
            self.next()
            if self.tok.is_op(";") or self.at_block_end():
                return Node("raise", line, expr=None)
            if self.tok.is_op("("):
                self.fail("ВызватьИсключение(...) with a category or cause is not supported; "
                          "give the text alone")
            return Node("raise", line, expr=self.expr())
        if t.is_kw("return"):
            self.next()
            if self.method is None:
                self.fail("Возврат outside a procedure or function", t)
            if self.tok.is_op(";") or self.at_block_end():
                if self.method.is_function:
                    self.fail("a function must return a value")
                return Node("return", line, expr=None)
            if not self.method.is_function:
                self.fail("a procedure cannot return a value")
            return Node("return", line, expr=self.expr())
        if t.is_kw("break", "continue"):
            self.next()
            return Node(t.value, line)
        if t.is_kw("var"):
            self.fail("Перем must come first in a module or a procedure")
        target = self.postfix()
        if self.tok.is_op("="):
            self.next()
            if target.kind == "var":
                self.declare(target.name)
            elif target.kind not in ("field", "index"):
                self.fail("cannot assign to this expression")
            return Node("assign", line, target=target, expr=self.expr())
        if target.kind not in ("call", "member_call"):
            self.fail("expected a statement")
        return Node("call_stmt", line, call=target)

    def if_statement(self):
        line = self.next().line
        branches = []
        cond = self.expr()
        self.expect_kw("then")
        branches.append((cond, self.block({"elsif", "else", "endif"})))
        else_body = []
        while self.tok.is_kw("elsif"):
            self.next()
            cond = self.expr()
            self.expect_kw("then")
            branches.append((cond, self.block({"elsif", "else", "endif"})))
        if self.tok.is_kw("else"):
            self.next()
            else_body = self.block({"endif"})
        self.expect_kw("endif")
        return Node("if", line, branches=branches, else_body=else_body)

    def for_statement(self):
        line = self.next().line
        if self.tok.is_kw("each"):
            self.next()
            name = self.ident()
            self.declare(name)
            self.expect_kw("in")
            coll = self.expr()
            self.expect_kw("do")
            body = self.block({"enddo"})
            self.next()
            return Node("foreach", line, name=name, coll=coll, body=body)
        name = self.ident()
        self.declare(name)
        self.expect_op("=")
        start = self.expr()
        self.expect_kw("to")
        end = self.expr()
        self.expect_kw("do")
        body = self.block({"enddo"})
        self.next()
        return Node("for", line, name=name, start=start, end=end, body=body)

    # ---- expressions ----
    def left_assoc(self, operand, ops, kind):
        """operand {op operand}: ops are keywords (И, Или) or operator signs."""
        e = operand()
        while self.tok.is_kw(*ops) or self.tok.is_op(*ops):
            t = self.next()
            e = Node(kind, t.line, op=t.value, a=e, b=operand())
        return e

    def expr(self):
        return self.left_assoc(self.and_expr, ("or",), "or")

    def and_expr(self):
        return self.left_assoc(self.not_expr, ("and",), "and")

    def not_expr(self):
        if self.tok.is_kw("not"):
            line = self.next().line
            return Node("not", line, e=self.not_expr())
        return self.compare()

    def compare(self):
        e = self.additive()
        if self.tok.is_op("=", "<>", "<", ">", "<=", ">="):
            t = self.next()
            e = Node("binary", t.line, op=t.value, a=e, b=self.additive())
            if self.tok.is_op("=", "<>", "<", ">", "<=", ">="):
                self.fail("comparisons cannot be chained")
        return e

    def additive(self):
        return self.left_assoc(self.multiplicative, ("+", "-"), "binary")

    def multiplicative(self):
        return self.left_assoc(self.unary, ("*", "/", "%"), "binary")

    def unary(self):
        if self.tok.is_op("-", "+"):
            t = self.next()
            return Node("unary", t.line, op=t.value, e=self.unary())
        return self.postfix()

    def postfix(self):
        e = self.primary()
        while True:
            if self.tok.is_op("."):
                self.next()
                t = self.tok
                if t.kind not in ("id", "kw"):
                    self.fail("expected a member name")
                self.next()
                name = t.value if t.kind == "id" else t.raw
                if self.tok.is_op("("):
                    e = self.site(Node("member_call", t.line, obj=e, name=name,
                                       args=self.args(), col=t.col))
                else:
                    e = Node("field", t.line, obj=e, name=name)
            elif self.tok.is_op("["):
                line = self.next().line
                index = self.expr()
                self.expect_op("]")
                e = Node("index", line, obj=e, index=index)
            else:
                return e

    def args(self):
        self.expect_op("(")
        args = []
        if self.tok.is_op(")"):
            self.next()
            return args
        while True:
            if self.tok.is_op(",", ")"):
                args.append(None)  # omitted: the callee's default
            else:
                args.append(self.expr())
            if self.tok.is_op(")"):
                self.next()
                return args
            self.expect_op(",")

    def site(self, node):
        # A site is shown by the first line of its statement (a call may continue below it).
        node.site = len(self.m.sites)
        node.stmt_line = self.stmt_line or node.line
        self.m.sites.append(node)
        return node

    def primary(self):
        t = self.tok
        if t.kind in ("num", "str", "date"):
            self.next()
            return Node("const", t.line, value=t.value)
        if t.is_kw("true", "false"):
            self.next()
            return Node("const", t.line, value=t.value == "true")
        if t.is_kw("undefined", "null"):
            self.next()
            return Node("const", t.line, value=UNDEFINED if t.value == "undefined" else NULL)
        if t.is_op("("):
            self.next()
            e = self.expr()
            self.expect_op(")")
            return e
        if t.is_op("?"):
            self.next()
            self.expect_op("(")
            c = self.expr()
            self.expect_op(",")
            a = self.expr()
            self.expect_op(",")
            b = self.expr()
            self.expect_op(")")
            return Node("ternary", t.line, c=c, a=a, b=b)
        if t.is_kw("new"):
            self.next()
            if self.tok.is_op("("):
                args = self.args()
                if not args or args[0] is None:
                    self.fail("Новый(...) needs a type name", t)
                return self.site(Node("new", t.line, type_expr=args[0], type_name=None,
                                      args=args[1:], col=t.col))
            name = self.ident()
            args = self.args() if self.tok.is_op("(") else []
            return self.site(Node("new", t.line, type_expr=None, type_name=name, args=args,
                                  col=t.col))
        if t.kind == "id":
            self.next()
            if self.tok.is_op("("):
                return self.site(Node("call", t.line, name=t.value, args=self.args(), col=t.col))
            return Node("var", t.line, name=t.value)
        self.fail("expected an expression")


def parse(name, source, text, first_line=1):
    """A module from BSL text; `source` names the file in errors and traces."""
    module = Module(name, source)
    return Parser(module, text, first_line).parse_module()


def parse_into(module, text, first_line):
    """Adds more module body text (a further README snippet) to `module`."""
    p = Parser(module, text, first_line)
    body = p.block(set())
    if p.tok.kind != "eof":
        p.fail("a README snippet holds statements only")
    module.body.extend(body)
    return body
