"""The runner's two kinds of failure.

`BslException` is a 1C exception: BSL code may catch it with Попытка ... Исключение.
`Unsupported` stops the run and fails the test: a construct or platform feature the runner does
not model, code 1C would refuse to compile (an undefined variable or procedure), or a member the
add-in does not have. BSL code can never catch it, so an example cannot hide it.
"""


class Unsupported(Exception):
    pass


class BslException(Exception):
    """A 1C exception. `info` is the ИнформацияОбОшибке value BSL code sees."""

    def __init__(self, info):
        super().__init__(info.description)
        self.info = info


class ErrorInfo:
    """ИнформацияОбОшибке: description and where it was raised; `cause` is the
    ИнформацияОбОшибке of an exception this one replaced (Причина)."""

    def __init__(self, description, module="", line=0, source_line="", cause=None):
        self.description = description
        self.module = module
        self.line = line
        self.source_line = source_line
        self.cause = cause

    def brief(self):
        """КраткоеПредставлениеОшибки: the innermost description."""
        return self.cause.brief() if self.cause else self.description

    def detailed(self):
        """ПодробноеПредставлениеОшибки, laid out as 1C does: where, what, the source line,
        then each cause."""
        text = f"{{{self.module}({self.line})}}: {self.description}"
        if self.source_line:
            text += "\n\t" + self.source_line.strip()
        if self.cause:
            text += "\nпо причине:\n" + self.cause.detailed()
        return text
