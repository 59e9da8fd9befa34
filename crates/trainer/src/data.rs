//! CSV (with a header row) into a column-major `f32` feature matrix and raw labels.
//!
//! # Expected flow
//! The header is read first to resolve the label and feature columns; the body is then cut at
//! line ends into a few blocks per worker, parsed in parallel (rayon, inside the caller's thread
//! pool) straight into one `Vec<f32>` per feature column.
//!
//! Two parsers share that flow. The fast one handles plain files (no quotes, `\n` or `\r\n`
//! line ends, every row complete and numeric): it splits fields at commas and parses numbers
//! with arrow's own float parser, so values are bit-identical. Anything else in a block (a
//! quote, a lone `\r`, a ragged row, a bad value, invalid UTF-8) makes it give up, and the file
//! is decoded again by `arrow-csv`, whose path reads quoted files and finds the exact error.
//!
//! # Caveats
//! Cutting at line ends is only safe without quoted fields (a quoted field may hold a line
//! break): on the arrow path a body containing `"` anywhere is decoded in one block instead.
//!
//! # Errors
//! Every problem is a [`DataError`] naming the 1-based data row and the column.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, RecordBatch};
use arrow_cast::parse::Parser;
use arrow_csv::reader::{Format, ReaderBuilder};
use arrow_schema::{DataType, Field, Schema};
use ndarray::{Array2, ShapeBuilder};
use rayon::prelude::*;

use crate::error::DataError;

const BATCH_ROWS: usize = 8192;
const MIN_BLOCK_BYTES: usize = 256 * 1024;

/// Which columns to read.
#[derive(Debug, Clone, Default)]
pub struct ColumnSelection {
    /// The label column, if any.
    pub label: Option<String>,
    /// Whether a missing label column is an error (training) or just absent (prediction).
    pub label_required: bool,
    /// Feature columns in this order; `None` means every column except the label.
    pub features: Option<Vec<String>>,
}

/// Labels as read: each row's code into a dictionary of the distinct strings seen.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLabels {
    /// The label column's name.
    pub column: String,
    /// Distinct label strings in order of first appearance.
    pub dictionary: Vec<String>,
    /// One index into `dictionary` per row.
    pub codes: Vec<u32>,
}

/// A parsed CSV file.
#[derive(Debug, Clone)]
pub struct Table {
    /// Feature column names, in matrix column order.
    pub feature_names: Vec<String>,
    /// Shape (rows, features), column-major (each feature column is contiguous).
    pub features: Array2<f32>,
    /// The label column, when selected and present.
    pub labels: Option<RawLabels>,
}

impl Table {
    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.features.nrows()
    }
}

struct Layout {
    names: Vec<String>,
    features: Vec<usize>,
    label: Option<usize>,
}

struct Block {
    rows: usize,
    columns: Vec<Vec<f32>>,
    dictionary: Vec<String>,
    codes: Vec<u32>,
}

/// Parse a whole CSV file held in memory. Call inside the rayon pool that should do the work.
pub fn parse_csv(bytes: &[u8], selection: &ColumnSelection) -> Result<Table, DataError> {
    parse_csv_with(bytes, selection, true)
}

/// [`parse_csv`], with the fast path switched off for `use_fast_path = false` (tests compare
/// the two).
fn parse_csv_with(
    bytes: &[u8],
    selection: &ColumnSelection,
    use_fast_path: bool,
) -> Result<Table, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::EmptyFile);
    }
    let header_end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
    let layout = resolve_columns(&bytes[..header_end], selection)?;
    let body = &bytes[header_end..];
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::NoRows);
    }
    if use_fast_path && let Some(blocks) = fast_blocks(body, &layout) {
        return assemble(blocks, &layout);
    }
    let schema = Arc::new(Schema::new(
        layout
            .names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let data_type = if layout.features.contains(&i) {
                    DataType::Float32
                } else {
                    DataType::Utf8
                };
                Field::new(name, data_type, true)
            })
            .collect::<Vec<_>>(),
    ));
    let blocks = split_blocks(body);
    let parsed: Result<Vec<Block>, BlockError> = blocks
        .par_iter()
        .map(|&(start, end)| {
            if blocks.len() > 1 && memchr::memchr(b'"', &body[start..end]).is_some() {
                return Err(BlockError::Quoted);
            }
            decode_block(&body[start..end], &schema, &layout)
                .map_err(|message| BlockError::Data(diagnose(body, start, end, &layout, message)))
        })
        .collect();
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(BlockError::Quoted) => vec![
            decode_block(body, &schema, &layout)
                .map_err(|message| diagnose(body, 0, body.len(), &layout, message))?,
        ],
        Err(BlockError::Data(error)) => return Err(error),
    };
    assemble(parsed, &layout)
}

/// What the fast path does with each field of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Skip,
    Feature(usize),
    Label,
}

/// The fast path: every block parsed by [`fast_block`], or `None` as soon as one block holds
/// something only the arrow path handles (see the module docs).
fn fast_blocks(body: &[u8], layout: &Layout) -> Option<Vec<Block>> {
    let mut roles = vec![Role::Skip; layout.names.len()];
    for (k, &j) in layout.features.iter().enumerate() {
        if roles[j] != Role::Skip {
            return None; // the same column selected twice: leave it to arrow
        }
        roles[j] = Role::Feature(k);
    }
    if let Some(j) = layout.label {
        roles[j] = Role::Label;
    }
    let blocks = split_blocks(body);
    blocks
        .par_iter()
        .map(|&(start, end)| fast_block(&body[start..end], &roles, layout.features.len()))
        .collect()
}

/// Parse one block of plain rows: lines end in `\n` or `\r\n`, empty lines are skipped,
/// fields are split at commas, numbers go through arrow's `Float32Type` parser (the one
/// `arrow-csv` calls). `None` for anything else.
fn fast_block(block: &[u8], roles: &[Role], n_features: usize) -> Option<Block> {
    if memchr::memchr(b'"', block).is_some() {
        return None;
    }
    let text = std::str::from_utf8(block).ok()?;
    let estimate = memchr::memchr_iter(b'\n', block).count() + 1;
    let mut columns: Vec<Vec<f32>> = (0..n_features)
        .map(|_| Vec::with_capacity(estimate))
        .collect();
    let has_label = roles.contains(&Role::Label);
    let mut codes = Vec::with_capacity(if has_label { estimate } else { 0 });
    let mut dictionary: Vec<String> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut rows = 0;
    let mut pos = 0;
    while pos < text.len() {
        let end = memchr::memchr(b'\n', &block[pos..]).map_or(block.len(), |i| pos + i);
        let line = text.get(pos..end)?;
        pos = end + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if memchr::memchr(b'\r', line.as_bytes()).is_some() {
            return None;
        }
        // Fields are short: a plain byte loop finds each comma faster than a searcher call.
        let line_bytes = line.as_bytes();
        let mut start = 0;
        for (n, role) in roles.iter().enumerate() {
            let last = n + 1 == roles.len();
            if let Role::Feature(k) = *role
                && let Some((value, used)) = number_then_delimiter(line_bytes.get(start..)?, last)
            {
                columns[k].push(value);
                start += used + 1;
                continue;
            }
            let stop = if last {
                if memchr::memchr(b',', line_bytes.get(start..)?).is_some() {
                    return None; // more fields than the header
                }
                line_bytes.len()
            } else {
                start + line_bytes.get(start..)?.iter().position(|&b| b == b',')?
            };
            // Commas are ASCII, so these are always char boundaries.
            let field = line.get(start..stop)?;
            start = stop + 1;
            match *role {
                Role::Skip => {}
                Role::Feature(k) => columns[k].push(Float32Type::parse(field)?),
                Role::Label => {
                    if field.is_empty() {
                        return None;
                    }
                    let code = match index.get(field) {
                        Some(code) => *code,
                        None => {
                            let code = u32::try_from(dictionary.len()).ok()?;
                            index.insert(field, code);
                            dictionary.push(field.to_string());
                            code
                        }
                    };
                    codes.push(code);
                }
            }
        }
        rows += 1;
    }
    Some(Block {
        rows,
        columns,
        dictionary,
        codes,
    })
}

/// A number at the start of `rest` that ends exactly at a comma (or, for the `last` field, at
/// the end of the line), and its length: parsing the number and finding the field's end in one
/// pass. The number is the one `Float32Type::parse` gives for that field, as both are
/// lexical-core's parser with its standard format over the same bytes. `None` when the field
/// is anything else (empty, padded, not a number, followed by more text), which the caller
/// then handles field by field.
fn number_then_delimiter(rest: &[u8], last: bool) -> Option<(f32, usize)> {
    let (value, used) = lexical_core::parse_partial::<f32>(rest).ok()?;
    let at_end = if last {
        used == rest.len()
    } else {
        rest.get(used) == Some(&b',')
    };
    (used > 0 && at_end).then_some((value, used))
}

enum BlockError {
    Quoted,
    Data(DataError),
}

fn resolve_columns(header: &[u8], selection: &ColumnSelection) -> Result<Layout, DataError> {
    let (schema, _) = Format::default()
        .with_header(true)
        .infer_schema(Cursor::new(header), Some(0))
        .map_err(|e| DataError::Csv {
            message: format!("cannot read the header row: {e}"),
        })?;
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().trim().to_string())
        .collect();
    let mut seen = HashMap::new();
    for name in &names {
        if seen.insert(name.as_str(), ()).is_some() {
            return Err(DataError::DuplicateColumn {
                column: name.clone(),
            });
        }
    }
    let find = |role: &'static str, column: &str| {
        names
            .iter()
            .position(|n| n == column)
            .ok_or_else(|| DataError::MissingColumn {
                role,
                column: column.to_string(),
                available: names.join(", "),
            })
    };
    let label = match &selection.label {
        Some(column) => match find("label", column) {
            Ok(index) => Some(index),
            Err(error) if selection.label_required => return Err(error),
            Err(_) => None,
        },
        None => None,
    };
    let features = match &selection.features {
        Some(columns) => {
            let mut indices = Vec::with_capacity(columns.len());
            for column in columns {
                let index = find("feature", column)?;
                if Some(index) == label {
                    return Err(DataError::LabelIsFeature {
                        column: column.clone(),
                    });
                }
                indices.push(index);
            }
            indices
        }
        None => (0..names.len()).filter(|i| Some(*i) != label).collect(),
    };
    if features.is_empty() {
        return Err(DataError::NoFeatures {
            label: selection.label.clone().unwrap_or_default(),
        });
    }
    Ok(Layout {
        names,
        features,
        label,
    })
}

/// Cut the body into blocks ending at line ends, one per worker (a few per thread so that
/// uneven blocks balance out).
fn split_blocks(body: &[u8]) -> Vec<(usize, usize)> {
    let wanted = (rayon::current_num_threads() * 4)
        .min(body.len() / MIN_BLOCK_BYTES)
        .max(1);
    let mut blocks = Vec::with_capacity(wanted);
    let mut start = 0;
    for i in 1..wanted {
        let target = (body.len() * i / wanted).max(start);
        let Some(newline) = memchr::memchr(b'\n', &body[target..]) else {
            break;
        };
        let end = target + newline + 1;
        blocks.push((start, end));
        start = end;
    }
    if start < body.len() {
        blocks.push((start, body.len()));
    }
    blocks
}

fn decode_block(block: &[u8], schema: &Arc<Schema>, layout: &Layout) -> Result<Block, String> {
    let mut projection = layout.features.clone();
    projection.extend(layout.label);
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_header(false)
        .with_batch_size(BATCH_ROWS)
        .with_projection(projection)
        .build_decoder();
    let mut batches = Vec::new();
    let mut rest = block;
    loop {
        if decoder.capacity() == 0 {
            batches.extend(decoder.flush().map_err(|e| e.to_string())?);
        }
        if rest.is_empty() {
            break;
        }
        let consumed = decoder.decode(rest).map_err(|e| e.to_string())?;
        if consumed == 0 && decoder.capacity() > 0 {
            return Err("the CSV decoder made no progress".into());
        }
        rest = &rest[consumed..];
    }
    decoder.decode(&[]).map_err(|e| e.to_string())?;
    batches.extend(decoder.flush().map_err(|e| e.to_string())?);
    collect_block(&batches, layout)
}

fn collect_block(batches: &[RecordBatch], layout: &Layout) -> Result<Block, String> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let n_features = layout.features.len();
    let mut columns: Vec<Vec<f32>> = (0..n_features).map(|_| Vec::with_capacity(rows)).collect();
    let mut dictionary = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut codes = Vec::with_capacity(if layout.label.is_some() { rows } else { 0 });
    for batch in batches {
        for (j, column) in columns.iter_mut().enumerate() {
            let array = batch
                .column(j)
                .as_primitive_opt::<Float32Type>()
                .ok_or("feature column was not decoded as numbers")?;
            if array.null_count() > 0 {
                return Err("a feature value is missing".into());
            }
            column.extend_from_slice(array.values());
        }
        if layout.label.is_some() {
            let array = batch
                .column(n_features)
                .as_string_opt::<i32>()
                .ok_or("label column was not decoded as text")?;
            if array.null_count() > 0 {
                return Err("a label is missing".into());
            }
            for value in array.iter().flatten() {
                let code = match index.get(value) {
                    Some(code) => *code,
                    None => {
                        let code = u32::try_from(dictionary.len())
                            .map_err(|_| "too many distinct labels")?;
                        index.insert(value.to_string(), code);
                        dictionary.push(value.to_string());
                        code
                    }
                };
                codes.push(code);
            }
        }
    }
    Ok(Block {
        rows,
        columns,
        dictionary,
        codes,
    })
}

/// Find the exact row and column of a decoding failure in `body[start..end]`. Arrow's own
/// message counts lines within the block, which means nothing to a user.
fn diagnose(body: &[u8], start: usize, end: usize, layout: &Layout, message: String) -> DataError {
    let rows_before = memchr::memchr_iter(b'\n', &body[..start]).count();
    if let Err(e) = std::str::from_utf8(&body[start..end]) {
        return DataError::NotUtf8 {
            offset: start + e.valid_up_to(),
        };
    }
    let text = String::from_utf8_lossy(&body[start..end]);
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let row = rows_before + i + 1;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != layout.names.len() {
            return DataError::FieldCount {
                row,
                found: fields.len(),
                expected: layout.names.len(),
            };
        }
        for &j in &layout.features {
            let value = fields[j];
            let column = layout.names[j].clone();
            if value.is_empty() {
                return DataError::MissingValue { row, column };
            }
            match value.parse::<f32>() {
                Ok(v) if !v.is_finite() => {
                    return DataError::NonFinite {
                        row,
                        column,
                        value: v,
                    };
                }
                Ok(_) => {}
                Err(_) => {
                    return DataError::NonNumeric {
                        row,
                        column,
                        value: value.chars().take(40).collect(),
                    };
                }
            }
        }
        if let Some(j) = layout.label
            && fields[j].is_empty()
        {
            return DataError::MissingLabel {
                row,
                column: layout.names[j].clone(),
            };
        }
    }
    DataError::Csv {
        message: format!(
            "{message} (in the block starting at row {})",
            rows_before + 1
        ),
    }
}

/// Concatenate the blocks into one column-major matrix, checking every value is finite.
fn assemble(blocks: Vec<Block>, layout: &Layout) -> Result<Table, DataError> {
    let rows: usize = blocks.iter().map(|b| b.rows).sum();
    if rows == 0 {
        return Err(DataError::NoRows);
    }
    let n_features = layout.features.len();
    let mut data = vec![0f32; rows * n_features];
    let first_bad: Option<(usize, usize, f32)> = data
        .par_chunks_mut(rows)
        .enumerate()
        .filter_map(|(j, column)| {
            let mut offset = 0;
            for block in &blocks {
                column[offset..offset + block.rows].copy_from_slice(&block.columns[j]);
                offset += block.rows;
            }
            column
                .iter()
                .position(|v| !v.is_finite())
                .map(|row| (row, j, column[row]))
        })
        .min_by_key(|&(row, j, _)| (row, j));
    if let Some((row, j, value)) = first_bad {
        return Err(DataError::NonFinite {
            row: row + 1,
            column: layout.names[layout.features[j]].clone(),
            value,
        });
    }
    let features =
        Array2::from_shape_vec((rows, n_features).f(), data).map_err(|e| DataError::Csv {
            message: format!("internal shape error: {e}"),
        })?;
    let labels = layout
        .label
        .map(|j| merge_labels(&blocks, layout.names[j].clone()));
    Ok(Table {
        feature_names: layout
            .features
            .iter()
            .map(|&j| layout.names[j].clone())
            .collect(),
        features,
        labels,
    })
}

fn merge_labels(blocks: &[Block], column: String) -> RawLabels {
    let mut dictionary: Vec<String> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut codes = Vec::with_capacity(blocks.iter().map(|b| b.codes.len()).sum());
    for block in blocks {
        let remap: Vec<u32> = block
            .dictionary
            .iter()
            .map(|label| {
                *index.entry(label.as_str()).or_insert_with(|| {
                    dictionary.push(label.clone());
                    (dictionary.len() - 1) as u32
                })
            })
            .collect();
        codes.extend(block.codes.iter().map(|&c| remap[c as usize]));
    }
    RawLabels {
        column,
        dictionary,
        codes,
    }
}

#[cfg(test)]
mod tests;
