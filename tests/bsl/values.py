"""BSL values as Python objects, their 1C type names, their text (Строка()) and their trace form.

Строка is `str`, Число is `Decimal` (1C numbers are decimal, not binary floating point), Булево
is `bool`, Дата is a naive `datetime` (1C dates carry no time zone), Неопределено and Null are
singletons; the collections below keep 1C's rules (case-insensitive structure keys, 0-based
arrays).
"""
import datetime
from decimal import Decimal

from errors import Unsupported


class _Singleton:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


UNDEFINED = _Singleton("Неопределено")
NULL = _Singleton("Null")
EMPTY_DATE = datetime.datetime(1, 1, 1)


class Binary:
    """ДвоичныеДанные."""

    def __init__(self, data):
        self.data = bytes(data)

    def __eq__(self, other):
        return isinstance(other, Binary) and other.data == self.data

    def __hash__(self):
        return hash(self.data)


class Array:
    """Массив: a list indexed from 0."""

    def __init__(self, items=()):
        self.items = list(items)


class Struct:
    """Структура: keys are identifiers compared without letter case, kept in insertion order."""

    def __init__(self):
        self.fields = {}  # lower-case key -> (key as written, value)

    def insert(self, key, value):
        if not isinstance(key, str) or not key or not (key[0].isalpha() or key[0] == "_") \
                or not key.replace("_", "a").isalnum():
            raise ValueError(f"Неверное имя ключа структуры ({key})")
        self.fields[key.lower()] = (key, value)

    def get(self, key):
        entry = self.fields.get(key.lower())
        return None if entry is None else entry[1]

    def has(self, key):
        return key.lower() in self.fields

    def items(self):
        return [(k, v) for k, v in self.fields.values()]


class Map:
    """Соответствие: any primitive value as a key."""

    def __init__(self):
        self.entries = {}

    def insert(self, key, value):
        self.entries[hashable(key)] = (key, value)

    def get(self, key):
        entry = self.entries.get(hashable(key))
        return UNDEFINED if entry is None else entry[1]


def hashable(key):
    if isinstance(key, (str, bool, Decimal, datetime.datetime, Binary)) or key in (UNDEFINED, NULL):
        return (type(key).__name__, key)
    raise Unsupported(f"a {type_name(key)} as a key of Соответствие")


class TypeValue:
    """Тип("Имя"): compared by name."""

    def __init__(self, name):
        self.name = name

    def __eq__(self, other):
        return isinstance(other, TypeValue) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


class EnumValue:
    """A value of a system enumeration, e.g. УровеньЖурналаРегистрации.Ошибка."""

    def __init__(self, enum, name):
        self.enum, self.name = enum, name

    def __eq__(self, other):
        return isinstance(other, EnumValue) and (other.enum, other.name) == (self.enum, self.name)

    def __hash__(self):
        return hash((self.enum, self.name))


class Enum:
    """A system enumeration: its values are read as properties."""

    def __init__(self, name, values):
        self.name = name
        self.values = {v.lower(): EnumValue(name, v) for v in values}


def type_name(v):
    """The 1C name of a value's type, as ТипЗнч would give it."""
    from errors import ErrorInfo

    if isinstance(v, bool):
        return "Булево"
    if isinstance(v, str):
        return "Строка"
    if isinstance(v, Decimal):
        return "Число"
    if isinstance(v, datetime.datetime):
        return "Дата"
    if v is UNDEFINED:
        return "Неопределено"
    if v is NULL:
        return "Null"
    if isinstance(v, ErrorInfo):
        return "ИнформацияОбОшибке"
    named = {Binary: "ДвоичныеДанные", Array: "Массив", Struct: "Структура", Map: "Соответствие",
             TypeValue: "Тип"}
    for cls, name in named.items():
        if isinstance(v, cls):
            return name
    if isinstance(v, EnumValue):
        return v.enum
    return getattr(v, "TYPE_NAME", type(v).__name__)


def number_text(n):
    """Строка(Число) in a Russian session: digits grouped by three with a no-break space, a
    decimal comma, no trailing zeros. This is why a 1C developer must not build a Kafka key
    with Строка(Номер): the add-in takes the Number itself."""
    sign = "-" if n < 0 else ""
    text = format(abs(n).normalize(), "f")
    whole, _, frac = text.partition(".")
    groups = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    out = sign + "\u00a0".join(groups)
    return out + "," + frac if frac else out


def to_string(v):
    """Строка(Значение) as a Russian 1C session shows it."""
    if isinstance(v, bool):
        return "Да" if v else "Нет"
    if isinstance(v, str):
        return v
    if isinstance(v, Decimal):
        return number_text(v)
    if isinstance(v, datetime.datetime):
        return "" if v == EMPTY_DATE else f"{v:%d.%m.%Y} {v.hour}:{v:%M:%S}"
    if v is UNDEFINED or v is NULL:
        return ""
    if isinstance(v, EnumValue):
        return v.name
    if isinstance(v, TypeValue):
        return v.name
    return type_name(v)


def to_trace(v):
    """A value for the runner's JSON trace: the 1C type and an exact rendering."""
    t = type_name(v)
    if isinstance(v, bool):
        return {"type": t, "value": v}
    if isinstance(v, str):
        return {"type": t, "value": v}
    if isinstance(v, Decimal):
        return {"type": t, "value": format(v.normalize(), "f")}
    if isinstance(v, datetime.datetime):
        return {"type": t, "value": v.strftime("%Y-%m-%dT%H:%M:%S")}
    if isinstance(v, Binary):
        return {"type": t, "hex": v.data.hex()}
    if isinstance(v, Array):
        return {"type": t, "items": [to_trace(x) for x in v.items]}
    if isinstance(v, Struct):
        return {"type": t, "fields": {k: to_trace(x) for k, x in v.items()}}
    if isinstance(v, Map):
        return {"type": t, "entries": [[to_trace(k), to_trace(x)] for k, x in v.entries.values()]}
    return {"type": t, "text": to_string(v)}
