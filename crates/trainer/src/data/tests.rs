#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

fn training(label: &str) -> ColumnSelection {
    ColumnSelection {
        label: Some(label.to_string()),
        label_required: true,
        features: None,
    }
}

fn parse(text: &str) -> Result<Table, DataError> {
    parse_csv(text.as_bytes(), &training("label"))
}

#[test]
fn reads_columns_major_with_string_labels() {
    let table = parse("a,label,b\n1,cat,2\n3,dog,4\n5,cat,6\n").unwrap();
    assert_eq!(table.feature_names, ["a", "b"]);
    assert_eq!(
        table.features.column(0).as_slice().unwrap(),
        [1.0, 3.0, 5.0]
    );
    assert_eq!(
        table.features.column(1).as_slice().unwrap(),
        [2.0, 4.0, 6.0]
    );
    let labels = table.labels.unwrap();
    assert_eq!(labels.dictionary, ["cat", "dog"]);
    assert_eq!(labels.codes, [0, 1, 0]);
}

#[test]
fn feature_selection_keeps_the_given_order_and_ignores_other_columns() {
    let selection = ColumnSelection {
        label: Some("y".into()),
        label_required: true,
        features: Some(vec!["c".into(), "a".into()]),
    };
    let table = parse_csv(b"a,b,c,y\n1,text,3,0\n4,more,6,1", &selection).unwrap();
    assert_eq!(table.feature_names, ["c", "a"]);
    assert_eq!(table.features.row(1).to_vec(), [6.0, 4.0]);
}

#[test]
fn crlf_bom_and_no_trailing_newline() {
    let table = parse("\u{feff}x,label\r\n1.5,1\r\n-2e1,0").unwrap();
    assert_eq!(table.features.column(0).to_vec(), [1.5, -20.0]);
}

#[test]
fn many_blocks_keep_row_order_and_find_errors_by_global_row() {
    let rows = 60_000;
    let mut text = String::from("x,y,label\n");
    for i in 0..rows {
        text.push_str(&format!("{i},{},{}\n", i * 2, i % 3));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let table = pool.install(|| parse(&text)).unwrap();
    assert_eq!(table.rows(), rows);
    let x = table.features.column(0);
    assert!(x.iter().enumerate().all(|(i, v)| *v == i as f32));
    assert_eq!(
        table.labels.unwrap().codes[rows - 1],
        ((rows - 1) % 3) as u32
    );

    let broken = text.replacen("59998,119996,", "59998,oops,", 1);
    let error = pool.install(|| parse(&broken)).unwrap_err();
    assert_eq!(
        error,
        DataError::NonNumeric {
            row: 59_999,
            column: "y".into(),
            value: "oops".into()
        }
    );
}

#[test]
fn quoted_fields_are_read_in_one_block() {
    let mut text = String::from("x,label\n");
    for i in 0..40_000 {
        text.push_str(&format!("{i},\"class, {}\"\n", i % 2));
    }
    let table = parse(&text).unwrap();
    assert_eq!(table.rows(), 40_000);
    assert_eq!(table.labels.unwrap().dictionary, ["class, 0", "class, 1"]);
}

#[test]
fn bad_inputs_name_row_and_column() {
    let cases: Vec<(&str, DataError)> = vec![
        ("", DataError::EmptyFile),
        ("a,label\n", DataError::NoRows),
        (
            "a,label\n1,0\nx1,1\n",
            DataError::NonNumeric {
                row: 2,
                column: "a".into(),
                value: "x1".into(),
            },
        ),
        (
            "a,label\n1,0\n,1\n",
            DataError::MissingValue {
                row: 2,
                column: "a".into(),
            },
        ),
        (
            "a,label\n1,0\nNaN,1\n",
            DataError::NonFinite {
                row: 2,
                column: "a".into(),
                value: f32::NAN,
            },
        ),
        (
            "a,label\n1,0\n1,1,3\n",
            DataError::FieldCount {
                row: 2,
                found: 3,
                expected: 2,
            },
        ),
        (
            "a,label\n1,0\n2,\n",
            DataError::MissingLabel {
                row: 2,
                column: "label".into(),
            },
        ),
        (
            "a,a,label\n1,2,0\n",
            DataError::DuplicateColumn { column: "a".into() },
        ),
        (
            "label\n1\n",
            DataError::NoFeatures {
                label: "label".into(),
            },
        ),
    ];
    for (text, expected) in cases {
        let error = parse(text).unwrap_err();
        // NaN != NaN, so compare the messages, which carry every field.
        assert_eq!(error.to_string(), expected.to_string(), "input {text:?}");
    }
    let inf = parse("a,label\n1,0\ninf,1\n").unwrap_err();
    assert!(matches!(inf, DataError::NonFinite { row: 2, .. }), "{inf}");
}

#[test]
fn missing_label_column_lists_the_available_columns() {
    let error = parse_csv(b"a,b\n1,2\n", &training("target")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "label column 'target' is not in the header; available columns: a, b"
    );
    let optional = ColumnSelection {
        label: Some("target".into()),
        label_required: false,
        features: None,
    };
    let table = parse_csv(b"a,b\n1,2\n", &optional).unwrap();
    assert!(table.labels.is_none());
    assert_eq!(table.feature_names, ["a", "b"]);
}

#[test]
fn invalid_utf8_is_reported_with_its_offset() {
    let error = parse_csv(b"a,label\n1,0\n\xff,1\n", &training("label")).unwrap_err();
    assert!(matches!(error, DataError::NotUtf8 { .. }), "{error}");
}

/// The fast path and the arrow path must agree bit for bit on every input, errors included.
fn assert_same_as_arrow(text: &str) {
    let selection = training("label");
    let fast = parse_csv_with(text.as_bytes(), &selection, true);
    let arrow = parse_csv_with(text.as_bytes(), &selection, false);
    match (fast, arrow) {
        (Ok(fast), Ok(arrow)) => {
            assert_eq!(fast.feature_names, arrow.feature_names, "input {text:?}");
            let bits = |t: &Table| t.features.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&arrow), "input {text:?}");
            assert_eq!(fast.features.dim(), arrow.features.dim(), "input {text:?}");
            assert_eq!(fast.labels, arrow.labels, "input {text:?}");
        }
        (Err(fast), Err(arrow)) => {
            assert_eq!(fast.to_string(), arrow.to_string(), "input {text:?}");
        }
        (fast, arrow) => panic!("input {text:?}: fast {fast:?}, arrow {arrow:?}"),
    }
}

/// Whether the fast path reads `text` by itself (rather than handing it to arrow).
fn fast_path_takes(text: &str) -> bool {
    let header_end = text.find('\n').unwrap() + 1;
    let layout = resolve_columns(&text.as_bytes()[..header_end], &training("label")).unwrap();
    fast_blocks(&text.as_bytes()[header_end..], &layout).is_some()
}

#[test]
fn fast_path_reads_plain_files_exactly_like_arrow() {
    let plain = [
        "x,label\n1,0\n2,1\n",
        "x,label\n1,0\n2,1",
        "x,label\r\n1.5,a\r\n-2e1,b\r\n",
        "x,label\r\n1.5,a\r\n-2e1,b",
        "x,label\n1,0\n2,1\n\n",
        "x,label\n1,0\n\n2,1\n",
        "x,label\r\n1,0\r\n\r\n2,1\r\n\r\n",
        "\u{feff}x,label\n1,0\n",
        "x,y,label\n1e-3,-4.25E+2,yes\n+7,.5,no\n8.,-0,yes\n",
        "x,label\n0.10000000000000001,0\n3.4028235e38,1\n1e-46,0\n",
        "x,label\n-1.4125731070209966,0\n0.55575535119098973,1\n",
        "x,label\n 1.5 ,0\n2,1\n",
        "x,label\n1 ,0\n2\t,1\n",
        "label,x,y\n0,1.5,-2.5e-3\n1,1e10,7\n",
        "label,x,y\n0,1.5,-2.5e-3\r\n1,1e10,7 \r\n",
        "x,label\n1,\u{e9}t\u{e9}\n2,\u{fc}n\u{ef}\n3,\u{e9}t\u{e9}\n",
    ];
    for text in plain {
        assert!(fast_path_takes(text), "fast path refused {text:?}");
        assert_same_as_arrow(text);
    }
}

#[test]
fn fast_path_hands_everything_else_to_arrow() {
    let other = [
        "x,label\n1,\"a, b\"\n2,\"c\"\n",
        "x,label\n\"1\",0\n",
        "x,label\n1,0\r2,1\r",
        "x,label\n1,0\nabc,1\n",
        "x,label\n1,0\n,1\n",
        "x,label\n1,0\n2,\n",
        "x,label\n1,0\n2,1,3\n",
        "x,label\n1,0\n2\n",
        "x,label\n1,0,\n",
        "x,label\n,\n",
        "x,label\n1,0\nNaN,1\n",
        "x,label\n1,0\ninf,1\n",
        "x,label\n1,0\n-infinity,1\n",
        "x,label\n1,0\n \n",
        "x,label\n1,0\n1e999,1\n",
        "x,label\n1,0\n0x10,1\n",
        "x,label\n1,0\n\u{e9}t\u{e9},1\n",
        "x,label\n1,0\n1.5x,1\n",
        "x,label\n1,0\n1e,1\n",
        "x,label\n1,0\n1e5e,1\n",
        "x,label\n1,0\n-,1\n",
        "x,label\n1,0\n.,1\n",
        "x,label\n1,0\n1 2,1\n",
        "label,x\n0,1.5\n1,1.5x\n",
        "label,x\n0,1.5\n1,NaN\n",
        "label,x\n0,1.5\n1,\n",
        "label,x\n0,1.5\n1,2,\n",
    ];
    for text in other {
        assert_same_as_arrow(text);
    }
    // NaN and infinity are parsed as numbers, then refused like before.
    assert!(fast_path_takes("x,label\n1,0\nNaN,1\n"));
    assert!(!fast_path_takes("x,label\n1,\"a, b\"\n"));
    assert!(!fast_path_takes("x,label\n1,0\n2,1,3\n"));
    assert!(!fast_path_takes("x,label\n1,0\r2,1\r"));
}

#[test]
fn fast_path_matches_arrow_on_many_blocks() {
    let mut text = String::from("a,b,label,c\n");
    for i in 0..50_000u32 {
        let a = f64::from(i).sin() * 1e3;
        let b = -f64::from(i) / 7.0;
        text.push_str(&format!("{a:.17},{b:e},{},{}\r\n", i % 5, i as f32 * 0.001));
    }
    assert!(fast_path_takes(&text));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| assert_same_as_arrow(&text));
}
