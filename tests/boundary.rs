//! The 1C boundary, exercised through the host emulator exactly as 1C calls it (issue 2):
//! loading, objects, names, argument errors, hostile host input, memory discipline.

mod host;

use host::{run_script, Platform};

/// Mixes letter case the way a 1C developer might type a name.
fn mixed_case(name: &str, flip: bool) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (i % 2 == 0) == flip {
                c.to_uppercase().collect::<String>()
            } else {
                c.to_lowercase().collect::<String>()
            }
        })
        .collect()
}

fn load_create_destroy_and_names(p: Platform) {
    let run = run_script(p, "new\nmembers\n");
    let members = run.of("members")[0].clone();
    let mut script =
        String::from("new\nget Version\nget Версия\nget VERSION\nget вЕРСИЯ\nstress 100\n");
    let methods = members["methods"].as_array().unwrap();
    let props = members["props"].as_array().unwrap();
    assert!(methods.len() >= 16, "{members}");
    for m in methods {
        for lang in ["en", "ru"] {
            let name = m[lang].as_str().unwrap();
            for variant in [
                name.to_string(),
                name.to_lowercase(),
                name.to_uppercase(),
                mixed_case(name, true),
                mixed_case(name, false),
            ] {
                script.push_str(&format!("find-method {variant}\n"));
            }
        }
    }
    for pr in props {
        for lang in ["en", "ru"] {
            let name = pr[lang].as_str().unwrap();
            for variant in [
                name.to_lowercase(),
                name.to_uppercase(),
                mixed_case(name, true),
            ] {
                script.push_str(&format!("find-prop {variant}\n"));
            }
        }
    }
    script.push_str("find-method NoSuchMethod\nfind-prop НетТакого\n");
    let run = run_script(p, &script);
    run.assert_clean_memory();

    let load = &run.lines[0];
    assert_eq!(load["class_names"], "Client");
    assert_eq!(load["attach_type"], 3);
    assert_eq!(load["capabilities"], 3);
    let new = &run.of("new")[0];
    assert_eq!(new["extension"], "Client");
    assert_eq!(new["info"], 2000);

    let version = env!("CARGO_PKG_VERSION");
    for get in run.of("get") {
        assert_eq!(get["ok"], true, "{get}");
        assert_eq!(get["value"]["value"], version, "{get}");
    }
    let stress = &run.of("stress")[0];
    assert_eq!(stress["created"], 100);
    assert_eq!(stress["versions"], 100);
    assert_eq!(stress["destroyed"], 100);

    let found = run.of("find-method");
    let (unknown, known) = found.split_last().unwrap();
    assert_eq!(unknown["index"], -1);
    for (k, f) in known.iter().enumerate() {
        // 10 look-ups per method: 5 spellings × 2 languages, all must land on the same index.
        assert_eq!(f["index"], (k / 10) as i64, "{f}");
    }
    let found = run.of("find-prop");
    let (unknown, known) = found.split_last().unwrap();
    assert_eq!(unknown["index"], -1);
    for (k, f) in known.iter().enumerate() {
        assert_eq!(f["index"], (k / 6) as i64, "{f}");
    }
}

fn bad_input_gives_clean_errors(p: Platform) {
    let script = r#"new
call Produce "topic" true
call Produce 5 "value"
call Produce "t" "v" "k" "[1,2" undefined
call Produce "t" "v" undefined undefined "zero"
call Produce "t" "v" undefined undefined 1.5
call CreateTopic "t" "many"
call Poll "soon"
call Seek "t" 0 true
call Produce "t" "bad \uD800 surrogate"
call Produce "t" "v" "\uDC00"
call Produce "t" x"00ff" vt9
call Produce "t" "v" undefined undefined undefined "extra"
callraw 424242 0
callraw -1 0
callraw 1 3 nullparams
callraw 1 0 nullret
call Flush -5
get LastError
null-checks
uilang ru
call Produce "topic" true
get ОписаниеОшибки
call Отправить "t" "v" undefined undefined 1
locale en_US
call Produce "topic" d"2024-01-02 03:04:05"
set Version "x"
set NoSuchProp 1
get LastError
"#;
    let run = run_script(p, script);
    run.assert_clean_memory();
    let calls: Vec<_> = run
        .lines
        .iter()
        .filter(|l| l["cmd"] == "call" || l["cmd"] == "callraw")
        .collect();
    for c in &calls {
        assert_eq!(c["ok"], false, "must fail: {c}");
        assert!(
            c["error"].as_str().is_some_and(|e| !e.is_empty()),
            "no error text: {c}"
        );
    }
    let errors: Vec<&str> = calls.iter().map(|c| c["error"].as_str().unwrap()).collect();
    assert_eq!(
        errors[0],
        "Produce: argument 2 (Value) must be String or BinaryData, got Boolean"
    );
    assert_eq!(
        errors[1],
        "Produce: argument 1 (Topic) must be String, got Number"
    );
    assert!(
        errors[2].starts_with("Produce: argument 4 (Headers)"),
        "{}",
        errors[2]
    );
    assert_eq!(
        errors[3],
        "Produce: argument 5 (Partition) must be Number or Undefined, got String"
    );
    assert!(
        errors[4].starts_with("Produce: argument 5 (Partition) must be a whole number"),
        "{}",
        errors[4]
    );
    assert_eq!(
        errors[5],
        "CreateTopic: argument 2 (Partitions) must be Number, got String"
    );
    assert_eq!(
        errors[6],
        "Poll: argument 1 (TimeoutMs) must be Number, got String"
    );
    assert!(
        errors[7].starts_with("Seek: argument 3 (Position) must be"),
        "{}",
        errors[7]
    );
    assert_eq!(
        errors[8],
        "Produce: argument 2 (Value) must be String, got a String with an unpaired UTF-16 surrogate at position 5"
    );
    assert!(
        errors[9].starts_with("Produce: argument 3 (Key) must be String"),
        "{}",
        errors[9]
    );
    assert!(
        errors[10].contains("unsupported value (variant type 9)"),
        "{}",
        errors[10]
    );
    assert_eq!(errors[11], "Produce: expected 5 arguments, got 6");
    assert_eq!(errors[12], "unknown method number 424242");
    assert_eq!(errors[13], "unknown method number -1");
    assert!(errors[14].contains("NULL"), "{}", errors[14]);
    assert!(errors[15].contains("NULL"), "{}", errors[15]);
    assert!(
        errors[16].starts_with("Flush: argument 1 (TimeoutMs) must be from 0"),
        "{}",
        errors[16]
    );
    assert_eq!(
        errors[17],
        "Отправить: аргумент 2 (Значение) должен быть Строка или ДвоичныеДанные, получено Булево"
    );
    assert_eq!(
        errors[18],
        "Отправить: не выполнено подключение: сначала вызовите Подключить(Настройки)"
    );
    assert_eq!(
        errors[19],
        "Produce: argument 2 (Value) must be String or BinaryData, got Date"
    );

    let gets = run.of("get");
    assert_eq!(
        gets[0]["value"]["value"], errors[16],
        "LastError keeps the last failure"
    );
    assert_eq!(gets[1]["value"]["value"], errors[17]);
    assert_eq!(gets[2]["value"]["value"], "unknown property number -1");

    let nulls = &run.of("null-checks")[0];
    for (k, v) in nulls.as_object().unwrap() {
        match k.as_str() {
            "cmd" | "error" => {}
            k if k.starts_with("Find") => assert_eq!(*v, -1, "{k}"),
            k if k.starts_with("GetClassObject") => assert_eq!(*v, 0, "{k}"),
            k if k.starts_with("DestroyObject") => assert_eq!(*v, -1, "{k}"),
            "GetNParams_bad" => assert_eq!(*v, 0),
            _ => assert!(*v == false || v.is_null(), "{k} = {v}"),
        }
    }
    let sets = run.of("set");
    assert_eq!(sets[0]["ok"], false);
    assert_eq!(sets[0]["error"], "property Version is read-only");
    assert_eq!(sets[1]["ok"], false);
}

#[test]
fn linux_load_create_destroy_and_names() {
    load_create_destroy_and_names(Platform::Linux);
}

#[test]
fn linux_bad_input_gives_clean_errors() {
    bad_input_gives_clean_errors(Platform::Linux);
}

#[test]
fn linux_onescript_style_virtual_destructor_and_init_order() {
    let run = run_script(Platform::Linux, "new init-first\nget Version\ndestroy-virtual\nnew no-mem\nget Version\ncall ListTopics\ndestroy\n");
    run.assert_clean_memory();
    assert_eq!(run.of("destroy-virtual")[0]["ok"], true);
    let gets = run.of("get");
    assert_eq!(gets[0]["ok"], true);
    // Without a memory manager a string cannot be handed over: a clean failure, not a crash.
    assert_eq!(gets[1]["ok"], false);
    assert_eq!(run.of("destroy")[0]["ok"], true);
}

#[test]
fn win64_load_create_destroy_and_names() {
    host::require_platform(Platform::Win64);
    load_create_destroy_and_names(Platform::Win64);
    bad_input_gives_clean_errors(Platform::Win64);
}

#[test]
fn win32_load_create_destroy_and_names() {
    host::require_platform(Platform::Win32);
    load_create_destroy_and_names(Platform::Win32);
    bad_input_gives_clean_errors(Platform::Win32);
}

#[test]
fn linux_arm64_under_qemu_load_create_destroy_and_names() {
    host::require_platform(Platform::LinuxArm64);
    load_create_destroy_and_names(Platform::LinuxArm64);
    bad_input_gives_clean_errors(Platform::LinuxArm64);
}
