"""The 1C global context the runner models: platform functions, `Новый` constructors, system
enumerations, and the members of platform objects (Массив, Структура, Соответствие, ЧтениеJSON,
ИнформацияОбОшибке). A name or member outside this list raises `Unsupported`.
"""
import datetime
import json
from decimal import Decimal, ROUND_DOWN

from errors import ErrorInfo, Unsupported
from values import (UNDEFINED, NULL, EMPTY_DATE, Array, Binary, Enum, EnumValue, Map, Struct,
                    TypeValue, to_string, to_trace, type_name)

ENUMS = {e.name.lower(): e for e in [
    Enum("ТипВнешнейКомпоненты", ["Native", "COM"]),
    Enum("ТипПодключенияВнешнейКомпоненты", ["Изолированно", "НеИзолированно"]),
    Enum("УровеньЖурналаРегистрации", ["Информация", "Предупреждение", "Ошибка", "Примечание"]),
]}

CHARS = {"пс": "\n", "вк": "\r", "таб": "\t", "нпп": "\u00a0"}

TYPE_NAMES = {"строка", "число", "дата", "булево", "неопределено", "null", "массив", "структура",
              "соответствие", "двоичныеданные"}


class KeyValue:
    """КлючИЗначение of a Структура or Соответствие in Для Каждого."""
    TYPE_NAME = "КлючИЗначение"

    def __init__(self, key, value):
        self.key, self.value = key, value


class JsonReader:
    """ЧтениеJSON over a string (УстановитьСтроку); files are not modelled."""
    TYPE_NAME = "ЧтениеJSON"

    def __init__(self):
        self.text = None


class Chars:
    TYPE_NAME = "Символы"


class Platform:
    def __init__(self, addins, trace):
        self.addins = addins  # addin.Registry
        self.trace = trace
        self.interp = None  # set by the runner

    def trace_value(self, v):
        return to_trace(v)

    def fail(self, frame, text):
        return self.interp.error(frame, text)

    def unsupported(self, frame, text):
        return Unsupported(f"{frame.module.name}:{frame.line}: {text}")

    # ---- global names ----
    def global_value(self, name):
        key = name.lower()
        if key in ENUMS:
            return ENUMS[key]
        if key == "символы":
            return Chars()
        return None

    # ---- functions ----
    def call_function(self, name, args, frame, want_value):
        fn = FUNCTIONS.get(name.lower())
        if fn is None:
            raise self.unsupported(frame, f"Процедура или функция с указанным именем не определена "
                                          f"({name}) in the module or the runner's platform model")
        returns, impl, max_args = fn
        if want_value and not returns:
            raise self.unsupported(frame, f"{name} is a procedure, used as a function")
        if len(args) > max_args:
            raise self.unsupported(frame, f"{name} with {len(args)} arguments (the runner models "
                                          f"at most {max_args})")
        args = args + [None] * (max_args - len(args))
        return impl(self, frame, *args)

    # ---- objects ----
    def new(self, name, args, frame):
        key = name.lower()
        if key.startswith("addin."):
            if args:
                raise self.unsupported(frame, "Новый(\"AddIn...\") with arguments")
            return self.addins.create(name, frame)
        if key == "массив":
            if args:
                raise self.unsupported(frame, "Новый Массив with a size")
            return Array()
        if key == "структура":
            return self.new_struct(args, frame)
        if key == "соответствие" and not args:
            return Map()
        if key == "чтениеjson" and not args:
            return JsonReader()
        raise self.unsupported(frame, f"Новый {name}({len(args)} arguments) is not modelled")

    def new_struct(self, args, frame):
        s = Struct()
        if not args:
            return s
        if not isinstance(args[0], str):
            raise self.fail(frame, "Несоответствие типов (параметр номер 1)")
        keys = [k.strip() for k in args[0].split(",") if k.strip()]
        if len(args) - 1 > len(keys):
            raise self.fail(frame, "Слишком много значений для ключей структуры")
        for i, k in enumerate(keys):
            try:
                s.insert(k, args[i + 1] if i + 1 < len(args) else UNDEFINED)
            except ValueError as e:
                raise self.fail(frame, str(e)) from None
        return s

    def get_field(self, obj, name, frame):
        key = name.lower()
        if isinstance(obj, Struct):
            if not obj.has(name):
                raise self.fail(frame, f"Поле объекта не обнаружено ({name})")
            return obj.get(name)
        if isinstance(obj, Enum):
            if key not in obj.values:
                raise self.unsupported(frame, f"{obj.name}.{name} is not a value of that "
                                              "enumeration")
            return obj.values[key]
        if isinstance(obj, Chars) and key in CHARS:
            return CHARS[key]
        if isinstance(obj, KeyValue) and key in ("ключ", "key", "значение", "value"):
            return obj.key if key in ("ключ", "key") else obj.value
        if isinstance(obj, ErrorInfo):
            return error_info_field(obj, key, frame, self)
        if hasattr(obj, "get_prop"):
            return obj.get_prop(name, frame)
        if obj is UNDEFINED or obj is NULL or isinstance(obj, (str, Decimal, bool,
                                                               datetime.datetime)):
            raise self.fail(frame, f"Значение не является значением объектного типа ({name})")
        raise self.unsupported(frame, f"{type_name(obj)}.{name} is not modelled")

    def set_field(self, obj, name, value, frame):
        if isinstance(obj, Struct):
            if not obj.has(name):
                raise self.fail(frame, f"Поле объекта не обнаружено ({name})")
            obj.insert(obj.fields[name.lower()][0], value)
            return
        if hasattr(obj, "set_prop"):
            obj.set_prop(name, value, frame)
            return
        raise self.unsupported(frame, f"assigning {type_name(obj)}.{name}")

    def index_of(self, arr, i, frame):
        if not isinstance(i, Decimal) or i != i.to_integral_value():
            raise self.fail(frame, "Неверный тип индекса")
        if not 0 <= i < len(arr.items):
            raise self.fail(frame, "Индекс находится за границами массива")
        return int(i)

    def get_index(self, obj, index, frame):
        if isinstance(obj, Array):
            return obj.items[self.index_of(obj, index, frame)]
        if isinstance(obj, Struct) and isinstance(index, str):
            return self.get_field(obj, index, frame)
        if isinstance(obj, Map):
            return obj.get(index)
        raise self.unsupported(frame, f"indexing a {type_name(obj)}")

    def set_index(self, obj, index, value, frame):
        if isinstance(obj, Array):
            obj.items[self.index_of(obj, index, frame)] = value
        elif isinstance(obj, Struct) and isinstance(index, str):
            self.set_field(obj, index, value, frame)
        elif isinstance(obj, Map):
            obj.insert(index, value)
        else:
            raise self.unsupported(frame, f"indexing a {type_name(obj)}")

    def iterate(self, coll, frame):
        if isinstance(coll, Array):
            return list(coll.items)
        if isinstance(coll, Struct):
            return [KeyValue(k, v) for k, v in coll.items()]
        if isinstance(coll, Map):
            return [KeyValue(k, v) for k, v in coll.entries.values()]
        raise self.fail(frame, "Итератор для значения не определен")

    def call_member(self, obj, name, args, frame, want_value):
        if hasattr(obj, "call_method"):  # an add-in object
            return obj.call_method(name, args, frame, want_value)
        table = METHODS.get(type(obj))
        entry = table and table.get(name.lower())
        if entry is None:
            if obj is UNDEFINED or obj is NULL or isinstance(obj, (str, Decimal, bool)):
                raise self.fail(frame, f"Значение не является значением объектного типа ({name})")
            raise self.unsupported(frame, f"method {type_name(obj)}.{name} is not modelled")
        returns, impl, max_args = entry
        if want_value and not returns:
            raise self.unsupported(frame, f"{type_name(obj)}.{name} is a procedure, used as a "
                                          "function")
        if len(args) > max_args:
            raise self.unsupported(frame, f"{type_name(obj)}.{name} with {len(args)} arguments")
        args = args + [None] * (max_args - len(args))
        return impl(self, frame, obj, *args)


def error_info_field(info, key, frame, platform):
    fields = {"описание": info.description, "description": info.description,
              "имямодуля": info.module, "modulename": info.module,
              "номерстроки": Decimal(info.line), "linenumber": Decimal(info.line),
              "исходнаястрока": info.source_line.strip(), "sourceline": info.source_line.strip(),
              "причина": info.cause or UNDEFINED, "cause": info.cause or UNDEFINED}
    if key not in fields:
        raise platform.unsupported(frame, f"ИнформацияОбОшибке.{key} is not modelled")
    return fields[key]


# ---- platform functions: name -> (returns a value, implementation, arguments modelled) ----
def need(platform, frame, value, types, what):
    """`value` if it has one of `types` (Булево is not a Число here), else a 1C exception."""
    types = types if isinstance(types, tuple) else (types,)
    value = UNDEFINED if value is None else value
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise platform.fail(frame, f"Неверный тип параметра ({what}): {type_name(value)}")
    return value


def fn_message(p, frame, text, status):
    if status is not None:
        raise p.unsupported(frame, "Сообщить with a status")
    p.trace({"event": "message", "at": f"{frame.module.name}:{frame.line}",
             "text": to_string(UNDEFINED if text is None else text)})


def fn_binary_from_string(p, frame, text):
    # One argument only: the default is UTF-8 without a byte order mark.
    return Binary(need(p, frame, text, str, 1).encode("utf-8"))


def fn_string_from_binary(p, frame, data):
    raw = need(p, frame, data, Binary, 1).data
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    return raw.decode("utf-8", errors="replace")


def fn_read_json(p, frame, reader, to_map):
    reader = need(p, frame, reader, JsonReader, 1)
    if reader.text is None:
        raise p.fail(frame, "Ошибка чтения JSON: источник не открыт")
    text, reader.text = reader.text, None
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError as e:
        raise p.fail(frame, f"Ошибка чтения JSON: {e}") from None
    as_map = to_map is True
    return from_json(p, frame, data, as_map)


def from_json(p, frame, v, as_map):
    if v is None:
        return UNDEFINED
    if isinstance(v, list):
        return Array(from_json(p, frame, x, as_map) for x in v)
    if isinstance(v, dict):
        out = Map() if as_map else Struct()
        for k, x in v.items():
            try:
                out.insert(k, from_json(p, frame, x, as_map))
            except ValueError:
                raise p.fail(frame, f"Ошибка чтения JSON: недопустимое имя свойства {k!r} для "
                                    "Структуры (читайте в Соответствие)") from None
        return out
    return v  # str, Decimal, bool


def fn_now(p, frame):
    return datetime.datetime.now().replace(microsecond=0)


def fn_error_info(p, frame):
    handling = p.interp.handling
    return handling[-1].info if handling else ErrorInfo("")


def fn_detailed(p, frame, info):
    return need(p, frame, info, ErrorInfo, 1).detailed()


def fn_brief(p, frame, info):
    return need(p, frame, info, ErrorInfo, 1).brief()


def fn_log(p, frame, event, level, metadata, data, comment, mode):
    if metadata is not None or data is not None or mode is not None:
        raise p.unsupported(frame, "ЗаписьЖурналаРегистрации with metadata, data or a mode")
    level = UNDEFINED if level is None else level
    p.trace({"event": "log", "at": f"{frame.module.name}:{frame.line}",
             "name": to_string(need(p, frame, event, str, 1)),
             "level": to_string(level), "comment": to_string(comment or "")})


def fn_type_of(p, frame, v):
    return TypeValue(type_name(UNDEFINED if v is None else v))


def fn_type(p, frame, name):
    name = need(p, frame, name, str, 1)
    if name.lower() not in TYPE_NAMES:
        raise p.unsupported(frame, f"Тип(\"{name}\") is not modelled")
    return TypeValue(next(n for n in ["Строка", "Число", "Дата", "Булево", "Неопределено", "Null",
                                      "Массив", "Структура", "Соответствие", "ДвоичныеДанные"]
                          if n.lower() == name.lower()))


def fn_string(p, frame, v):
    return to_string(UNDEFINED if v is None else v)


def fn_xml_string(p, frame, v):
    """XMLСтрока: the value's XML text; for a Number plain digits with a dot, no grouping."""
    v = UNDEFINED if v is None else v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, Decimal):
        return format(v.normalize(), "f") if v != 0 else "0"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S")
    if v is UNDEFINED or v is NULL:
        return ""
    raise p.unsupported(frame, f"XMLСтрока of a {type_name(v)}")


def fn_int(p, frame, v):
    return need(p, frame, v, Decimal, 1).to_integral_value(rounding=ROUND_DOWN)


def fn_min(p, frame, *vals):
    vals = [need(p, frame, v, Decimal, i + 1) for i, v in enumerate(vals) if v is not None]
    return min(vals)


def fn_max(p, frame, *vals):
    vals = [need(p, frame, v, Decimal, i + 1) for i, v in enumerate(vals) if v is not None]
    return max(vals)


def fn_date(p, frame, *parts):
    given = [v for v in parts if v is not None]
    if len(given) not in (3, 6):
        raise p.unsupported(frame, "Дата() with other than 3 or 6 numbers")
    try:
        return datetime.datetime(*[int(need(p, frame, v, Decimal, i + 1))
                                   for i, v in enumerate(given)])
    except ValueError:
        raise p.fail(frame, "Недопустимое значение даты") from None


def fn_local_time(p, frame, utc, zone):
    if zone is not None:
        raise p.unsupported(frame, "МестноеВремя with a time zone")
    utc = need(p, frame, utc, datetime.datetime, 1)
    if utc == EMPTY_DATE:
        return utc
    # The session time zone is the machine's, as on a 1C server with no zone set.
    aware = utc.replace(tzinfo=datetime.timezone.utc).astimezone()
    return aware.replace(tzinfo=None)


def fn_filled(p, frame, v):
    v = UNDEFINED if v is None else v
    if v is UNDEFINED or v is NULL:
        return False
    if isinstance(v, (str,)):
        return v.strip() != ""
    if isinstance(v, Decimal):
        return v != 0
    if isinstance(v, datetime.datetime):
        return v != EMPTY_DATE
    if isinstance(v, bool):
        return True
    if isinstance(v, Array):
        return bool(v.items)
    if isinstance(v, Struct):
        return bool(v.fields)
    raise p.unsupported(frame, f"ЗначениеЗаполнено of a {type_name(v)}")


def fn_attach(p, frame, location, name, kind, isolation):
    location = need(p, frame, location, str, 1)
    name = need(p, frame, name, str, 2)
    for value, enum in ((kind, "ТипВнешнейКомпоненты"),
                        (isolation, "ТипПодключенияВнешнейКомпоненты")):
        if value is not None and not (isinstance(value, EnumValue) and value.enum == enum):
            raise p.fail(frame, f"Неверный тип параметра: ожидается {enum}")
    if kind is not None and kind.name != "Native":
        raise p.unsupported(frame, "only Native add-ins are modelled")
    return p.addins.attach(location, name, frame)


FUNCTIONS = {
    "сообщить": (False, fn_message, 2),
    "получитьдвоичныеданныеизстроки": (True, fn_binary_from_string, 1),
    "получитьстрокуиздвоичныхданных": (True, fn_string_from_binary, 1),
    "прочитатьjson": (True, fn_read_json, 2),
    "текущаядатасеанса": (True, fn_now, 0),
    "текущаядата": (True, fn_now, 0),
    "информацияобошибке": (True, fn_error_info, 0),
    "подробноепредставлениеошибки": (True, fn_detailed, 1),
    "краткоепредставлениеошибки": (True, fn_brief, 1),
    "записьжурналарегистрации": (False, fn_log, 6),
    "типзнч": (True, fn_type_of, 1),
    "тип": (True, fn_type, 1),
    "строка": (True, fn_string, 1),
    "xmlстрока": (True, fn_xml_string, 1),
    "цел": (True, fn_int, 1),
    "мин": (True, fn_min, 8),
    "макс": (True, fn_max, 8),
    "дата": (True, fn_date, 6),
    "местноевремя": (True, fn_local_time, 2),
    "значениезаполнено": (True, fn_filled, 1),
    "подключитьвнешнююкомпоненту": (True, fn_attach, 4),
}


# ---- members of platform objects: type -> name -> (returns, implementation, arguments) ----
def arr_add(p, frame, a, v):
    a.items.append(UNDEFINED if v is None else v)


def arr_count(p, frame, a):
    return Decimal(len(a.items))


def arr_get(p, frame, a, i):
    return a.items[p.index_of(a, i, frame)]


def struct_insert(p, frame, s, key, value):
    try:
        s.insert(need(p, frame, key, str, 1), UNDEFINED if value is None else value)
    except ValueError as e:
        raise p.fail(frame, str(e)) from None


def struct_count(p, frame, s):
    return Decimal(len(s.fields))


def struct_has(p, frame, s, key):
    return s.has(need(p, frame, key, str, 1))


def map_insert(p, frame, m, key, value):
    m.insert(UNDEFINED if key is None else key, UNDEFINED if value is None else value)


def map_get(p, frame, m, key):
    return m.get(UNDEFINED if key is None else key)


def map_count(p, frame, m):
    return Decimal(len(m.entries))


def reader_set_string(p, frame, r, text):
    r.text = need(p, frame, text, str, 1)


def reader_close(p, frame, r):
    r.text = None


METHODS = {
    Array: {"добавить": (False, arr_add, 1), "количество": (True, arr_count, 0),
            "получить": (True, arr_get, 1)},
    Struct: {"вставить": (False, struct_insert, 2), "количество": (True, struct_count, 0),
             "свойство": (True, struct_has, 1)},
    Map: {"вставить": (False, map_insert, 2), "получить": (True, map_get, 1),
          "количество": (True, map_count, 0)},
    JsonReader: {"установитьстроку": (False, reader_set_string, 1),
                 "закрыть": (False, reader_close, 0)},
}
