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
