//! Aggregation over classes and seeds, and the report writers built on it.

use conad_eval::{
    Error, MetricKind, Metrics, Record, ResultsReport, ResultsTable, markdown_method_summaries,
    markdown_per_class, write_class_summaries_csv, write_method_summaries_csv, write_records_csv,
};

fn m(auroc: f64) -> Metrics {
    Metrics {
        auroc,
        aupr: auroc - 0.1,
        fpr_at_95_tpr: 1.0 - auroc,
    }
}

/// Method `a`: complete 3 classes × 2 seeds; method `b`: class c1 has one seed only.
fn table() -> ResultsTable {
    let mut t = ResultsTable::new();
    let a = [
        ("c0", [0.90, 0.80]),
        ("c1", [0.70, 0.75]),
        ("c2", [0.60, 0.50]),
    ];
    for (class, v) in a {
        for (seed, &x) in v.iter().enumerate() {
            t.push(Record::new("cifar10", "a", class, seed as u64, m(x)))
                .unwrap();
        }
    }
    t.push(Record::new("cifar10", "b", "c0", 0, m(0.95)))
        .unwrap();
    t.push(Record::new("cifar10", "b", "c0", 1, m(0.85)))
        .unwrap();
    t.push(Record::new("cifar10", "b", "c1", 0, m(0.65)))
        .unwrap();
    t
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

// >>> import numpy as np
// >>> a = {'c0': [0.90, 0.80], 'c1': [0.70, 0.75], 'c2': [0.60, 0.50]}
// >>> means = [np.mean(v) for v in a.values()]; stds = [np.std(v, ddof=1) for v in a.values()]
// >>> np.mean(means), stds
// (0.7083333333333334, [0.07071067811865474, 0.03535533905932741, 0.07071067811865474])
// >>> seed = [np.mean([v[i] for v in a.values()]) for i in range(2)]; np.std(seed, ddof=1)
// 0.03535533905932749
// >>> np.mean(stds)
// 0.05892556509887895
// >>> np.std(sum(a.values(), []), ddof=1)       # CON2: classes and seeds jointly
// 0.14288690166235207
// >>> np.mean([np.mean([0.95, 0.85]), 0.65]), np.std([0.95, 0.85, 0.65], ddof=1)
// (0.7749999999999999, 0.15275252316519464)
#[test]
fn every_std_matches_numpy_ddof1() {
    let t = table();
    let methods = t.method_summaries();
    assert_eq!(methods.len(), 2);
    let a = &methods[0];
    assert_eq!(
        (a.method.as_str(), a.n_classes, a.n_seeds, a.n_records),
        ("a", 3, 2, 6)
    );
    assert!(close(a.auroc.mean, 0.708_333_333_333_333_4));
    assert!(close(
        a.auroc.std_over_seeds.unwrap(),
        0.035_355_339_059_327_49
    ));
    assert!(close(
        a.auroc.mean_class_std.unwrap(),
        0.058_925_565_098_878_95
    ));
    assert!(close(
        a.auroc.std_over_classes_and_seeds.unwrap(),
        0.142_886_901_662_352_07
    ));
    // aupr = auroc − 0.1 and fpr = 1 − auroc: shifted means, same stds.
    assert!(close(a.aupr.mean, 0.608_333_333_333_333_4));
    assert!(close(a.fpr_at_95_tpr.mean, 1.0 - 0.708_333_333_333_333_4));
    assert!(close(
        a.fpr_at_95_tpr.std_over_classes_and_seeds.unwrap(),
        0.142_886_901_662_352_07
    ));

    let b = &methods[1];
    assert_eq!((b.n_classes, b.n_seeds, b.n_records), (2, 2, 3));
    assert!(close(b.auroc.mean, 0.775));
    // Seed 1 lacks class c1 and c1 has a single seed: those stds are undefined, not 0.
    assert_eq!(b.auroc.std_over_seeds, None);
    assert_eq!(b.auroc.mean_class_std, None);
    assert!(close(
        b.auroc.std_over_classes_and_seeds.unwrap(),
        0.152_752_523_165_194_64
    ));

    let classes = t.class_summaries();
    assert_eq!(classes.len(), 5);
    assert_eq!(classes[1].class, "c1");
    assert!(close(classes[1].auroc.mean, 0.725));
    assert!(close(
        classes[1].auroc.std.unwrap(),
        0.035_355_339_059_327_41
    ));
    assert_eq!(classes[4].seeds, [0]);
    assert_eq!(classes[4].auroc.std, None);
    assert_eq!(classes[4].auroc.n, 1);
}

#[test]
fn duplicates_and_invalid_values_are_rejected() {
    let mut t = table();
    let e = t
        .push(Record::new("cifar10", "a", "c0", 1, m(0.5)))
        .unwrap_err();
    assert!(
        matches!(&e, Error::DuplicateRecord { record } if record == "cifar10/a/c0/seed 1"),
        "{e:?}"
    );
    let e = t.push(Record::new(
        "cifar10",
        "a",
        "c9",
        0,
        Metrics {
            auroc: f64::NAN,
            ..m(0.5)
        },
    ));
    assert!(matches!(
        e.unwrap_err(),
        Error::InvalidMetricValue {
            metric: "auroc",
            ..
        }
    ));
    let e = t.push(Record::new(
        "cifar10",
        "a",
        "c9",
        0,
        Metrics {
            fpr_at_95_tpr: 1.5,
            ..m(0.5)
        },
    ));
    assert!(matches!(
        e.unwrap_err(),
        Error::InvalidMetricValue {
            metric: "fpr_at_95_tpr",
            ..
        }
    ));
    assert_eq!(t.len(), 9);
}

#[test]
fn json_round_trip_and_validation_on_load() {
    let t = table();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.starts_with(
        r#"[{"dataset":"cifar10","method":"a","class":"c0","seed":0,"auroc":0.9,"aupr":0.8,"fpr_at_95_tpr":0.09999999999999998}"#
    ));
    let back: ResultsTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);
    let dup = format!("[{0},{0}]", serde_json::to_string(&t.records()[0]).unwrap());
    let err = serde_json::from_str::<ResultsTable>(&dup).unwrap_err();
    assert!(err.to_string().contains("duplicate record"), "{err}");

    let report = ResultsReport::new(&t);
    let mut buf = Vec::new();
    report.write_json(&mut buf).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(
        v["methods"][1]["auroc"]["std_over_seeds"],
        serde_json::Value::Null
    );
    assert_eq!(v["classes"][0]["auroc"]["n"], 2);
    let back: ResultsReport = serde_json::from_slice(&buf).unwrap();
    assert_eq!(back, report);
}

#[test]
fn csv_writers() {
    let mut t = ResultsTable::new();
    t.push(Record::new(
        "med",
        "con2, invert",
        "normal \"1\"",
        3,
        m(0.75),
    ))
    .unwrap();
    t.push(Record::new(
        "med",
        "con2, invert",
        "normal \"1\"",
        4,
        m(0.25),
    ))
    .unwrap();
    let mut out = Vec::new();
    write_records_csv(&t, &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "dataset,method,class,seed,auroc,aupr,fpr_at_95_tpr\n\
         med,\"con2, invert\",\"normal \"\"1\"\"\",3,0.75,0.65,0.25\n\
         med,\"con2, invert\",\"normal \"\"1\"\"\",4,0.25,0.15,0.75\n"
    );
    let mut out = Vec::new();
    write_class_summaries_csv(&t.class_summaries(), &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[0],
        "dataset,method,class,n_seeds,auroc_mean,auroc_std,aupr_mean,aupr_std,fpr_at_95_tpr_mean,fpr_at_95_tpr_std"
    );
    // std of [0.75, 0.25] with ddof 1 = 0.5/√2.
    assert!(
        lines[1].starts_with("med,\"con2, invert\",\"normal \"\"1\"\"\",2,0.5,0.35355339059327"),
        "{}",
        lines[1]
    );
    let mut out = Vec::new();
    write_method_summaries_csv(&t.method_summaries(), &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].starts_with("dataset,method,n_classes,n_seeds,n_records,auroc_mean,auroc_std_over_seeds,auroc_mean_class_std,auroc_std_over_classes_and_seeds,aupr_mean"));
    // After the quoted method: n_classes, n_seeds, n_records, then 4 statistics × 3 metrics.
    // One class, two seeds: all four AUROC statistics are defined (mean 0.5, std 0.5/√2 three
    // times, since over seeds, mean of class stds and jointly coincide for one class).
    let rest: Vec<&str> = lines[1]
        .split("invert\",")
        .nth(1)
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(rest.len(), 3 + 4 * 3);
    assert_eq!(rest[..4], ["1", "2", "2", "0.5"]);
    for f in &rest[4..7] {
        assert!(
            (f.parse::<f64>().unwrap() - 0.5 / 2f64.sqrt()).abs() < 1e-15,
            "{f}"
        );
    }
}

#[test]
fn markdown_tables() {
    let t = table();
    let md = markdown_method_summaries(&t.method_summaries());
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[0],
        "| dataset | method | classes | seeds | AUROC % | AUROC σ classes×seeds | AUPR % | FPR@95TPR % |"
    );
    assert_eq!(
        lines[2],
        "| cifar10 | a | 3 | 2 | 70.8 ± 3.5 | 14.3 | 60.8 ± 3.5 | 29.2 ± 3.5 |"
    );
    assert_eq!(
        lines[3],
        "| cifar10 | b | 2 | 2 | 77.5 | 15.3 | 67.5 | 22.5 |"
    );
    assert!(md.contains("ddof 1"));

    let per_class = markdown_per_class(
        &t.class_summaries(),
        &t.method_summaries(),
        MetricKind::Auroc,
    );
    let lines: Vec<&str> = per_class.lines().collect();
    assert_eq!(
        lines[0],
        "**cifar10**, AUROC % per class (mean ± std over seeds)"
    );
    assert_eq!(lines[2], "| class | a | b |");
    assert_eq!(lines[4], "| c0 | 85.0 ± 7.1 | 90.0 ± 7.1 |");
    assert_eq!(lines[5], "| c1 | 72.5 ± 3.5 | 65.0 |");
    assert_eq!(lines[6], "| c2 | 55.0 ± 7.1 |  |");
    assert_eq!(lines[7], "| **mean** | 70.8 ± 3.5 | 77.5 |");
    assert!(
        ResultsReport::new(&t)
            .to_markdown()
            .contains("| c2 | 55.0 ± 7.1 |  |")
    );
}
