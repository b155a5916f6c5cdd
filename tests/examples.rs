//! Every BSL call in README.md and examples-1c/ runs here, through the 1C host emulator against a
//! real broker: tests/bsl/run.py interprets the BSL (the subset these texts use; anything else
//! fails the run) and backs `Новый("AddIn.Kafka.Client")` with the emulator, so an example that
//! drifts from the add-in fails this test. Each run's trace (add-in calls and results, Сообщить,
//! event log records, calls of ЗаписатьЗаказ) is checked, what was sent is read back with a peer
//! client, and every call site of the examples must have run in one of the scenarios, apart from
//! the few listed below that only a failing Close could reach.

mod host;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value as Json;

use host::Platform;
use support::{peer, python, unb64, Broker, KafkaSpec, KAFKA};

/// The broker the examples run against: switching the suite to another broker is this line.
/// A node of its own per test: the examples use fixed topic names (orders, files, exports).
fn broker() -> Broker {
    KafkaSpec::new(KAFKA).start()
}

const TEMPLATE: &str = "ОбщийМакет.КомпонентаKafka";

/// Call sites no scenario can reach, with why, as (file, text of the first line of their
/// statement). The add-in's Close does not fail, so a handler around it never runs.
const EXAMPLE_SITES_NOT_RUN: &[(&str, &str)] = &[
    // КлиентKafka.ЗакрытьПослеОшибки: the Исключение branch around Клиент.Закрыть().
    (
        "examples-1c/01_КлиентKafka.bsl",
        "ЗаписьЖурналаРегистрации(\"Kafka\", УровеньЖурналаРегистрации.Предупреждение",
    ),
    // ОтправкаЗаказов.ПроверитьДоставку: a delivery report with an error, or messages still
    // pending after 30 s; neither happens against a working broker, and against a missing one
    // Connect fails first.
    ("examples-1c/02_ОтправкаЗаказов.bsl", "XMLСтрока(Отчет.id)"),
    (
        "examples-1c/02_ОтправкаЗаказов.bsl",
        "XMLСтрока(Ответ.pending)",
    ),
];

/// The README's Close-in-its-own-Попытка handler, for the same reason.
const README_SITES_NOT_RUN: &[(&str, &str)] = &[(
    "README.md",
    "ЗаписьЖурналаРегистрации(\"Kafka\", УровеньЖурналаРегистрации.Предупреждение",
)];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example_modules() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples-1c"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bsl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples-1c/*.bsl");
    files
}

/// A loopback port nothing listens on: the broker of the "broker unreachable" scenarios.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

/// One run of tests/bsl/run.py.
struct Bsl {
    args: Vec<String>,
}

impl Bsl {
    fn new(bootstrap: &str) -> Bsl {
        let lib = host::library(Platform::Linux);
        let mut args = vec![
            root().join("tests/bsl/run.py").display().to_string(),
            "--host".into(),
            host::emulator(Platform::Linux).display().to_string(),
            "--root".into(),
            root().display().to_string(),
            "--bootstrap".into(),
            bootstrap.into(),
        ];
        args.push("--template".into());
        args.push(format!("{TEMPLATE}={}", lib.display()));
        Bsl { args }
    }

    /// The example modules plus the test's scenario module.
    fn examples(bootstrap: &str) -> Bsl {
        let mut b = Bsl::new(bootstrap);
        for m in example_modules() {
            b = b.arg("--module", &m.display().to_string());
        }
        let scenarios = root().join("tests/bsl/scenarios/ПроверкаПримеров.bsl");
        b.arg("--module", &scenarios.display().to_string())
            .arg("--trace-proc", "ЗаписатьЗаказ")
    }

    /// README.md's ```bsl snippets, with the two values they leave to the reader.
    fn readme(bootstrap: &str) -> Bsl {
        Bsl::new(bootstrap)
            .arg("--readme", &root().join("README.md").display().to_string())
            .arg("--let", "ТекстJSON=\"{\"\"номер\"\":42}\"")
            .arg("--let", "НомерЗаказа=42")
    }

    fn arg(mut self, key: &str, value: &str) -> Bsl {
        self.args.push(key.into());
        self.args.push(value.into());
        self
    }

    /// Later --template wins: points the add-in template at another file.
    fn template(self, path: &Path) -> Bsl {
        self.arg("--template", &format!("{TEMPLATE}={}", path.display()))
    }

    fn entry(self, name: &str) -> Bsl {
        self.arg("--entry", name)
    }

    fn run(self) -> Trace {
        let out = Command::new(python())
            .args(&self.args)
            .output()
            .expect("run tests/bsl/run.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines = stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad trace line {l:?}: {e}"))
            })
            .collect();
        Trace {
            lines,
            status: out.status.code().unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

struct Trace {
    lines: Vec<Json>,
    status: i32,
    stderr: String,
}

impl Trace {
    fn events(&self, kind: &str) -> Vec<&Json> {
        self.lines.iter().filter(|l| l["event"] == kind).collect()
    }

    fn end(&self) -> &Json {
        self.events("end")
            .pop()
            .unwrap_or_else(|| panic!("the runner ended early: {}", self.stderr))
    }

    fn assert_ok(&self) {
        assert_eq!(
            self.end()["ok"],
            true,
            "BSL run failed: {}",
            self.end()["error"]
        );
        assert_eq!(self.status, 0, "runner status; stderr: {}", self.stderr);
    }

    /// The emulator returned every host allocation, also when the BSL run failed.
    fn assert_host_clean(&self) {
        let exits = self.events("host_exit");
        assert!(!exits.is_empty(), "no emulator exit line: {}", self.stderr);
        for e in exits {
            assert_eq!(e["leaked"], 0, "{e}");
            assert_eq!(e["bad_frees"], 0, "{e}");
            assert_eq!(e["status"], 0, "{e}");
        }
    }

    fn messages(&self) -> Vec<&str> {
        self.events("message")
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect()
    }

    fn logs(&self, level: &str) -> Vec<&str> {
        self.events("log")
            .iter()
            .filter(|l| l["level"] == level)
            .map(|l| l["comment"].as_str().unwrap())
            .collect()
    }

    /// Add-in calls of one method (by the name the BSL used).
    fn calls(&self, member: &str) -> Vec<&Json> {
        self.events("addin")
            .into_iter()
            .filter(|c| c["op"] == "call" && c["member"] == member)
            .collect()
    }

    fn covered(&self) -> BTreeSet<String> {
        self.end()["covered"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    /// Call sites as (id "file:line:col", first line of the site's statement).
    fn sites(&self) -> Vec<(String, String)> {
        self.end()["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["statement"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// Every call site of the files under `prefix` ran in one of `runs`, except those `allowed`
/// names; and each allowed entry still names a site that did not run (so the list cannot rot).
fn assert_every_call_ran(runs: &[&Trace], prefix: &str, allowed: &[(&str, &str)]) {
    let covered: BTreeSet<String> = runs.iter().flat_map(|r| r.covered()).collect();
    let sites = runs[0].sites();
    assert!(
        sites.iter().any(|(id, _)| id.starts_with(prefix)),
        "no sites under {prefix}"
    );
    let missed: Vec<&(String, String)> = sites
        .iter()
        .filter(|(id, _)| id.starts_with(prefix) && !covered.contains(id))
        .collect();
    let allowed_site = |(id, text): &(String, String)| {
        allowed
            .iter()
            .any(|(file, fragment)| id.starts_with(&format!("{file}:")) && text.contains(fragment))
    };
    let unexpected: Vec<_> = missed.iter().filter(|s| !allowed_site(s)).collect();
    assert!(
        unexpected.is_empty(),
        "BSL calls that never ran: {unexpected:#?}"
    );
    for (file, fragment) in allowed {
        assert!(
            missed
                .iter()
                .any(|(id, text)| id.starts_with(&format!("{file}:")) && text.contains(fragment)),
            "{file}: {fragment:?} is listed as not run, but it ran or is gone"
        );
    }
}

/// A record as a peer client read it.
struct Record {
    key: String,
    value: Vec<u8>,
    /// (name, value as text)
    headers: Vec<(String, String)>,
}

/// Records of a topic read back by kafka-python.
fn read_back(b: &Broker, topic: &str, count: usize) -> Vec<Record> {
    let lines = peer(
        "consume.py",
        &[
            "--client",
            "kafka-python",
            "--bootstrap",
            b.bootstrap(),
            "--topic",
            topic,
            "--count",
            &count.to_string(),
            "--timeout",
            "60",
        ],
        "",
    );
    assert_eq!(lines.len(), count, "{topic}: {lines:?}");
    lines
        .iter()
        .map(|l| {
            let key = String::from_utf8(unb64(l["key_b64"].as_str().unwrap())).unwrap();
            let headers = l["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let v = unb64(h[1].as_str().unwrap());
                    (
                        h[0].as_str().unwrap().to_string(),
                        String::from_utf8(v).unwrap(),
                    )
                })
                .collect();
            Record {
                key,
                value: unb64(l["value_b64"].as_str().unwrap()),
                headers,
            }
        })
        .collect()
}

fn text(v: &Json) -> &str {
    v["value"]
        .as_str()
        .unwrap_or_else(|| panic!("not a text value: {v}"))
}

/// The orders ЗаписатьЗаказ received, in order: (key, order text), with each argument's type
/// the same in every call (Строка, Строка, Массив, Дата) and dates inside the run.
fn orders_written(run: &Trace) -> Vec<(String, String)> {
    let (start, end) = (
        run.events("start")[0]["now"].as_str().unwrap(),
        run.end()["now"].as_str().unwrap(),
    );
    run.events("proc")
        .iter()
        .map(|p| {
            let args = p["args"].as_array().unwrap();
            let types: Vec<&str> = args.iter().map(|a| a["type"].as_str().unwrap()).collect();
            assert_eq!(types, ["Строка", "Строка", "Массив", "Дата"], "{p}");
            let headers = &args[2]["items"];
            assert_eq!(headers.as_array().unwrap().len(), 1, "{p}");
            assert_eq!(text(&headers[0]["items"][0]), "источник");
            assert_eq!(text(&headers[0]["items"][1]), "1С");
            // Both ways to the date (Клиент.Время and МестноеВремя of the batch's milliseconds)
            // give the local time the record was sent, within this run.
            let date = text(&args[3]);
            assert!(
                start <= date && date <= end,
                "{date} outside {start}..{end}: {p}"
            );
            (text(&args[0]).to_string(), text(&args[1]).to_string())
        })
        .collect()
}

fn order_keys(orders: &[(String, String)]) -> BTreeSet<&str> {
    for (key, value) in orders {
        assert_eq!(value, &format!("{{\"номер\":{key}}}"));
    }
    orders.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn examples_run_against_a_broker() {
    let b = broker();
    let run = Bsl::examples(b.bootstrap())
        .entry("ПроверкаПримеров.ОтправкаИПолучение")
        .entry("ПроверкаПримеров.ОшибкаВДанных")
        .run();
    run.assert_ok();
    run.assert_host_clean();

    // ПримерОбработкиОшибки: the reason reaches the exception, the event log and ОписаниеОшибки.
    let wrong_value =
        "Отправить: аргумент 2 (Значение) должен быть Строка или ДвоичныеДанные, получено Булево";
    assert_eq!(run.messages()[0], wrong_value);
    assert!(run.logs("Ошибка")[0].starts_with("{ОбщийМодуль.КлиентKafka.Модуль("));
    assert!(run.logs("Ошибка")[0].contains(wrong_value));

    // ОтправитьЗаказы: order numbers go as Number keys; every delivery reported, none pending.
    let asyncs = run.calls("ОтправитьАсинхронно");
    assert_eq!(asyncs.len(), 3 + 3 + 2, "{asyncs:?}");
    for c in &asyncs {
        assert_eq!(c["args"][2]["type"], "Число", "{c}");
    }
    for flush in run.calls("ДождатьсяОтправки") {
        let answer: Json = serde_json::from_str(text(&flush["result"])).unwrap();
        assert_eq!(answer["pending"], 0, "{answer}");
        let reports = answer["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 3, "{answer}");
        assert!(reports
            .iter()
            .all(|r| r["error"].is_null() && r["offset"].as_i64() >= Some(0)));
    }
    assert!(run.messages()[1].starts_with("Начало выгрузки записано в exports, смещение 0"));

    // The consumer job: first run one message per Получить, the second, in batches, continues
    // after the first run's commit and sees only the newer orders.
    let orders = orders_written(&run);
    assert_eq!(orders.len(), 6, "{orders:?}");
    assert_eq!(
        order_keys(&orders[..3]),
        BTreeSet::from(["1001", "1002", "1003"])
    );
    assert_eq!(
        order_keys(&orders[3..]),
        BTreeSet::from(["2001", "2002", "2003"])
    );
    let polled = run
        .calls("Получить")
        .iter()
        .filter(|c| c["result"]["value"] == true)
        .count();
    assert_eq!(polled, 3);
    assert!(!run.calls("ПолучитьПакет").is_empty());

    // ОшибкаВДанных: the example logs and re-raises the original exception, with its module
    // and line, after closing the client (the async order before the bad one is delivered).
    let bad = "ОтправитьАсинхронно: аргумент 2 (Значение) должен быть Строка или ДвоичныеДанные, получено Булево";
    let last = run.messages().pop().unwrap();
    assert!(
        last.starts_with("{ОбщийМодуль.ОтправкаЗаказов.Модуль("),
        "{last}"
    );
    assert!(last.contains(bad), "{last}");
    assert!(run.logs("Ошибка").iter().any(|l| l.contains(bad)));
    let closes = run.calls("Закрыть");
    assert!(closes.last().unwrap()["at"]
        .as_str()
        .unwrap()
        .starts_with("КлиентKafka:"));
    assert!(closes.iter().all(|c| c["ok"] == true));

    // What the examples sent, as another client reads it.
    let records = read_back(&b, "orders", 7);
    let keys: BTreeSet<&str> = records.iter().map(|r| r.key.as_str()).collect();
    let want = ["1001", "1002", "1003", "2001", "2002", "2003", "3001"];
    assert_eq!(keys, BTreeSet::from(want));
    for r in &records {
        assert_eq!(r.value, format!("{{\"номер\":{}}}", r.key).as_bytes());
        assert_eq!(r.headers, [("источник".to_string(), "1С".to_string())]);
    }
    for r in read_back(&b, "files", 2) {
        assert_eq!(
            (r.key.as_str(), r.value.as_slice()),
            ("файл-1", "тест".as_bytes())
        );
    }
    for r in read_back(&b, "exports", 3) {
        assert_eq!(r.key, "orders");
        let want = [("источник", "1С"), ("версия", "2")].map(|(k, v)| (k.into(), v.into()));
        assert_eq!(r.headers, want);
    }

    // The broker is unreachable: both examples give the caller the original error.
    let unreachable = Bsl::examples(&closed_port())
        .entry("ПроверкаПримеров.БрокерНедоступен")
        .run();
    unreachable.assert_ok();
    unreachable.assert_host_clean();
    let messages = unreachable.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    for (text, module) in messages.iter().zip(["ОтправкаЗаказов", "ПолучениеЗаказов"])
    {
        assert!(
            text.starts_with(&format!("{{ОбщийМодуль.{module}.Модуль(")),
            "{text}"
        );
        assert!(
            text.contains("Подключить: брокер Kafka недоступен"),
            "{text}"
        );
    }
    assert_eq!(unreachable.calls("Закрыть").len(), 2);

    // The template holds no loadable library: ПодключитьВнешнююКомпоненту returns Ложь.
    let not_a_library = Bsl::examples(b.bootstrap())
        .template(&root().join("Cargo.toml"))
        .entry("ПроверкаПримеров.КомпонентаНеПодключается")
        .run();
    not_a_library.assert_ok();
    assert_eq!(not_a_library.events("attach")[0]["ok"], false);
    assert_eq!(
        not_a_library.messages(),
        ["Не удалось подключить внешнюю компоненту kafka1c из общего макета КомпонентаKafka"]
    );

    assert_every_call_ran(
        &[&run, &unreachable, &not_a_library],
        "examples-1c/",
        EXAMPLE_SITES_NOT_RUN,
    );
}

#[test]
fn readme_snippets_run_against_a_broker() {
    let b = broker();
    let run = Bsl::readme(b.bootstrap()).run();
    run.assert_ok();
    run.assert_host_clean();

    // The Number key is sent as its decimal text; the offset comes back as a Number.
    let produce = &run.calls("Отправить")[0];
    assert_eq!(produce["ok"], true, "{produce}");
    assert_eq!(
        produce["args"][2],
        serde_json::json!({"type": "Число", "value": "42"})
    );
    assert_eq!(produce["result"]["type"], "Число");
    let records = read_back(&b, "orders", 1);
    assert_eq!(records[0].key, "42");
    assert_eq!(records[0].value, "{\"номер\":42}".as_bytes());

    // The error snippet: the reason in the exception (logged) and in ОписаниеОшибки.
    let reason =
        "Отправить: аргумент 2 (Значение) должен быть Строка или ДвоичныеДанные, получено Булево";
    assert_eq!(run.messages(), [reason]);
    assert!(run.logs("Ошибка")[0].contains(reason));

    // Unreachable broker: the handler logs, closes and re-raises the original exception.
    let unreachable = Bsl::readme(&closed_port()).run();
    unreachable.assert_host_clean();
    let error = unreachable.end()["error"].as_str().unwrap();
    assert!(
        error.contains("Подключить: брокер Kafka недоступен"),
        "{error}"
    );
    assert!(error.contains("{README("), "{error}");
    assert_ne!(unreachable.status, 0);
    assert!(unreachable.logs("Ошибка")[0].contains("брокер Kafka недоступен"));
    assert_eq!(unreachable.calls("Закрыть").len(), 1);

    assert_every_call_ran(&[&run, &unreachable], "README.md:", README_SITES_NOT_RUN);
}

/// The runner's own tests: the language subset, 1C's rules it models, and that unsupported
/// constructs, undefined names and members the add-in lacks fail instead of being skipped.
#[test]
fn bsl_runner_checks_itself() {
    let out = Command::new(python())
        .args(["-m", "unittest", "discover", "-s"])
        .arg(root().join("tests/bsl"))
        .args(["-p", "test_*.py"])
        .env("HOST1C", host::emulator(Platform::Linux))
        .env("KAFKA1C_LIB", host::library(Platform::Linux))
        .output()
        .expect("python3 -m unittest");
    assert!(
        out.status.success(),
        "tests/bsl unit tests failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
