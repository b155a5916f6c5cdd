"""Tests of the BSL runner itself (run by tests/examples.rs: `cargo test --test examples`).

Language cases need nothing else; add-in cases need the host emulator and the library, given
as HOST1C and KAFKA1C_LIB, and fail without them: the runner is never tested by skipping.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from addin import substitute_bootstrap  # noqa: E402


def run_bsl(body, entry="Тест.Выполнить", args=(), header="// Общий модуль Тест\n"):
    """Runs one module; returns (exit status, trace events)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "Тест.bsl")
        with open(path, "w", encoding="utf-8") as f:
            f.write(header + body)
        cmd = [sys.executable, os.path.join(HERE, "run.py"), "--host",
               os.environ.get("HOST1C", "host1c-not-given"), "--module", path, *args]
        if entry:
            cmd += ["--entry", entry]
        out = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", timeout=120)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    return out.returncode, events


def messages(events):
    return [e["text"] for e in events if e["event"] == "message"]


def end(events):
    return next(e for e in events if e["event"] == "end")


def proc(body):
    return "Процедура Выполнить() Экспорт\n" + body + "\nКонецПроцедуры\n"


class Language(unittest.TestCase):
    def ok(self, body, extra=""):
        status, events = run_bsl(proc(body) + extra)
        self.assertEqual(status, 0, end(events)["error"])
        return messages(events)

    def refused(self, text, expect, entry="Тест.Выполнить"):
        status, events = run_bsl(text, entry=entry)
        self.assertNotEqual(status, 0)
        self.assertIn("unsupported", end(events)["error"])
        self.assertIn(expect, end(events)["error"])

    def test_strings(self):
        got = self.ok('Сообщить("а ""б""\n'
                      '\t|в\n'
                      '\t// комментарий внутри многострочной строки\n'
                      '\t|г");')
        self.assertEqual(got, ['а "б"\nв\nг'])

    def test_numbers_are_decimal_and_shown_as_1c_shows_them(self):
        got = self.ok('Сообщить(0.1 + 0.2 = 0.3); Сообщить(1234567.5); Сообщить(XMLСтрока(1234567.5));'
                      'Сообщить(Цел(-7 / 2)); Сообщить(7 % 3); Сообщить("x" + 1000);')
        self.assertEqual(got, ["Да", "1\u00a0234\u00a0567,5", "1234567.5", "-3", "1",
                               "x1\u00a0000"])

    def test_dates(self):
        got = self.ok("Д = '20240102' + 86400; Сообщить(Д); Сообщить(Д - '20240101');"
                      "Сообщить(Дата(2024, 1, 3) = Д); Сообщить(XMLСтрока(Д));")
        self.assertEqual(got, ["03.01.2024 0:00:00", "172\u00a0800", "Да", "2024-01-03T00:00:00"])

    def test_parameters_by_reference_unless_val_and_defaults(self):
        got = self.ok("А = 1; Б = 1; Изменить(А, Б); Сообщить(А); Сообщить(Б);"
                      "Сообщить(СДефолтом(1)); Сообщить(СДефолтом(1, 5));",
                      "Процедура Изменить(Ссылка, Знач Копия)\n Ссылка = 2; Копия = 2;\n"
                      "КонецПроцедуры\n"
                      "Функция СДефолтом(А, Б = 10)\n Возврат А + Б;\nКонецФункции\n")
        self.assertEqual(got, ["2", "1", "11", "6"])

    def test_control_flow(self):
        got = self.ok("Сумма = 0; Для И1 = 1 По 10 Цикл Если И1 % 2 = 0 Тогда Продолжить;"
                      "ИначеЕсли И1 > 7 Тогда Прервать; Иначе Сумма = Сумма + И1; КонецЕсли;"
                      "КонецЦикла; Сообщить(Сумма);"
                      "Н = 3; Пока Н > 0 Цикл Н = Н - 1; КонецЦикла; Сообщить(Н);"
                      "С = Новый Структура(\"А, Б\", 1, 2); Для Каждого КЗ Из С Цикл "
                      "Сообщить(КЗ.Ключ + \"=\" + КЗ.Значение); КонецЦикла;"
                      "Сообщить(?(Истина И Не Ложь, \"да\", \"нет\"));")
        self.assertEqual(got, ["16", "0", "А=1", "Б=2", "да"])

    def test_exceptions_keep_the_original(self):
        got = self.ok(
            "Попытка\n"
            "  Попытка\n"
            "    ВызватьИсключение \"исходная\";\n"
            "  Исключение\n"
            "    Попытка\n"
            "      ВызватьИсключение \"другая\";\n"
            "    Исключение\n"
            "    КонецПопытки;\n"
            "    ВызватьИсключение;\n"
            "  КонецПопытки;\n"
            "Исключение\n"
            "  Сообщить(КраткоеПредставлениеОшибки(ИнформацияОбОшибке()));\n"
            "  Сообщить(ПодробноеПредставлениеОшибки(ИнформацияОбОшибке()));\n"
            "  Сообщить(ИнформацияОбОшибке().НомерСтроки);\n"
            "КонецПопытки;\n"
            "Сообщить(ИнформацияОбОшибке().Описание = \"\");\n"
            "Попытка С = Новый Структура; Х = С.Нет; Исключение "
            "Сообщить(ИнформацияОбОшибке().Описание); КонецПопытки;\n"
            "Попытка Х = 1 / 0; Исключение Сообщить(ИнформацияОбОшибке().Описание); "
            "КонецПопытки;")
        self.assertEqual(got[0], "исходная")
        self.assertTrue(got[1].startswith("{ОбщийМодуль.Тест.Модуль(5)}: исходная"), got[1])
        self.assertEqual(got[2:], ["5", "Да", "Поле объекта не обнаружено (Нет)", "Деление на 0"])

    def test_json(self):
        got = self.ok('Ч = Новый ЧтениеJSON; Ч.УстановитьСтроку("{""a"":[1,null,true],""b-c"":2}");'
                      'Д = ПрочитатьJSON(Ч, Истина); Сообщить(Д["b-c"]); Сообщить(Д["a"][1] = Неопределено);'
                      'Ч.УстановитьСтроку("{""b-c"":2}");'
                      'Попытка ПрочитатьJSON(Ч); Исключение Сообщить("нет структуры"); КонецПопытки;')
        self.assertEqual(got, ["2", "Да", "нет структуры"])

    def test_unsupported_constructs_fail_the_run(self):
        self.refused(proc("Х = Нет;"), "Переменная не определена (Нет)")
        self.refused(proc("НетТакой();"), "НетТакой")
        self.refused(proc("Выполнить(\"Х = 1\");"), "Выполнить")
        self.refused(proc("Перейти ~Метка;"), "Перейти")
        self.refused("#Если Сервер Тогда\n" + proc("") + "#КонецЕсли\n", "preprocessor")
        self.refused("&НаСервере\n" + proc(""), "unexpected character")
        self.refused(proc("ВызватьИсключение;"), "outside an Исключение")
        self.refused(proc("Х = П();") + "Процедура П()\nКонецПроцедуры\n", "used as a function")
        self.refused(proc("П(1, 2);") + "Процедура П(А)\nКонецПроцедуры\n", "too many arguments")
        self.refused(proc("С = Новый Массив; С.Сортировать();"), "Массив.Сортировать")
        self.refused(proc("Х = Новый ТаблицаЗначений;"), "ТаблицаЗначений")

    def test_a_try_cannot_hide_what_is_unsupported(self):
        self.refused(proc("Попытка НетТакой(); Исключение Сообщить(1); КонецПопытки;"),
                     "НетТакой")

    def test_common_modules(self):
        status, events = run_bsl(proc(""), header="// модуль без имени\n")
        self.assertNotEqual(status, 0)
        self.assertIn("Общий модуль", end(events)["error"])
        status, events = run_bsl("Х = 1;\n")
        self.assertIn("only procedures and functions", end(events)["error"])
        self.refused(proc("Тест.Внутренняя();") + "Процедура Внутренняя()\nКонецПроцедуры\n",
                     "not an exported procedure")
        self.refused(proc(""), "no exported procedure Тест.Другая", entry="Тест.Другая")

    def test_bootstrap_substitution_changes_only_the_servers(self):
        self.assertEqual(substitute_bootstrap('{"bootstrap.servers":"a:1,b:2","acks":"all"}', "x:9"),
                         '{"bootstrap.servers":"x:9","acks":"all"}')
        self.assertEqual(substitute_bootstrap("a:1,b:2", "x:9"), "x:9")
        self.assertEqual(substitute_bootstrap('{"acks":"all"}', "x:9"), '{"acks":"all"}')


def need_addin():
    host, lib = os.environ.get("HOST1C"), os.environ.get("KAFKA1C_LIB")
    if not host or not lib or not os.path.exists(host) or not os.path.exists(lib):
        raise AssertionError("HOST1C and KAFKA1C_LIB must name the built emulator and library "
                             "(cargo test --test examples sets them)")
    return lib


class Addin(unittest.TestCase):
    ATTACH = ('ПодключитьВнешнююКомпоненту("ОбщийМакет.К", "Kafka", ТипВнешнейКомпоненты.Native);\n'
              'Клиент = Новый("AddIn.Kafka.Client");\n')

    def run_addin(self, body, template=None):
        lib = need_addin()
        return run_bsl(proc(self.ATTACH + body),
                       args=["--template", f"ОбщийМакет.К={template or lib}"])

    def test_attach_from_a_zip_by_its_manifest(self):
        lib = need_addin()
        with tempfile.TemporaryDirectory() as d:
            zpath = os.path.join(d, "kafka1c.zip")
            with zipfile.ZipFile(zpath, "w") as z:
                z.write(os.path.join(HERE, "..", "..", "MANIFEST.XML"), "MANIFEST.XML")
                z.write(lib, "libkafka1c_linux_x86_64.so")
            status, events = self.run_addin("Сообщить(ТипЗнч(Клиент.Версия) = Тип(\"Строка\"));",
                                            template=zpath)
        self.assertEqual(status, 0, end(events)["error"])
        self.assertEqual(messages(events), ["Да"])
        host = [e for e in events if e["event"] == "host_exit"]
        self.assertEqual(host[0]["leaked"], 0)

    def test_a_failed_call_raises_the_add_ins_reason(self):
        status, events = self.run_addin(
            "Попытка Клиент.Отправить(\"t\", \"v\", , Истина); Исключение "
            "Сообщить(ИнформацияОбОшибке().Описание); Сообщить(Клиент.ОписаниеОшибки); "
            "КонецПопытки;")
        self.assertEqual(status, 0, end(events)["error"])
        got = messages(events)
        # The omitted Key took the add-in's default; argument 4 is the one refused.
        self.assertIn("аргумент 4 (Заголовки)", got[0])
        self.assertEqual(got[0], got[1])

    def test_members_the_add_in_lacks_stop_the_run(self):
        for body, expect in [
            ("Клиент.НетМетода();", "no method НетМетода"),
            ("Х = Клиент.НетСвойства;", "no property НетСвойства"),
            ("Х = Клиент.Закрыть();", "used as a function"),
            ("Клиент.Закрыть(1);", "takes 0 arguments"),
            ("Попытка Клиент.НетМетода(); Исключение КонецПопытки;", "no method НетМетода"),
        ]:
            status, events = self.run_addin(body)
            self.assertNotEqual(status, 0, body)
            self.assertIn(expect, end(events)["error"], body)

    def test_unknown_class_and_template(self):
        status, events = self.run_addin("Х = Новый(\"AddIn.Kafka.Нет\");")
        self.assertIn("Тип не определен (AddIn.Kafka.Нет)", end(events)["error"])
        status, events = run_bsl(proc('ПодключитьВнешнююКомпоненту("ОбщийМакет.Другой", "K");'))
        self.assertIn("--template", end(events)["error"])


if __name__ == "__main__":
    unittest.main()
