//! Data loading: CSV (every error path, messages checked), DataLoader (order, shuffling,
//! drop-last, prefetch and its shutdown), collate, splits, windows, standardisation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use adjoint_core::{DType, Params, Tensor};
use adjoint_nn::data::{
    collate, parse_csv, random_split, read_csv, take_rows, time_split, CsvOptions, DataLoader, Dataset,
    Missing, Standardizer, Subset, TensorDataset, Windows,
};
use adjoint_nn::NnError;

fn repo_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data").join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("adjoint-nn-data");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn err(text: &str, opts: &CsvOptions) -> String {
    parse_csv(text, "t.csv", opts).unwrap_err().to_string()
}

// ------------------------------------------------------------------------------------ CSV

#[test]
fn csv_reads_the_digits_file() {
    let t = read_csv(repo_data("imaging_digits_8x8.csv"), &CsvOptions::default()).unwrap();
    assert_eq!(t.data.shape(), &[1797, 65]);
    assert_eq!(t.names[0], "p0");
    assert_eq!(t.names[64], "label");
    assert_eq!(t.lines[0], 2);
    // First row of the file: 0,0,5,13,9,1,0,0,... label 0
    let first: Vec<f32> = t.data.narrow(0, 0, 1).to_vec();
    assert_eq!(&first[..6], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0]);
    assert_eq!(first[64], 0.0);
    let labels = t.column("label").unwrap().to_vec::<f32>();
    assert_eq!(labels.len(), 1797);
    assert_eq!(labels[1], 1.0);
    assert!(labels.iter().all(|&l| (0.0..=9.0).contains(&l) && l.fract() == 0.0));
}

#[test]
fn csv_selects_columns_by_name_and_index_in_the_given_order() {
    let text = "a,b,c\n1,2,3\n4,5,6\n";
    let t = parse_csv(text, "t.csv", &CsvOptions::default().columns(&["c", "a"]).dtype(DType::F64)).unwrap();
    assert_eq!(t.names, ["c", "a"]);
    assert_eq!(t.data.dtype(), DType::F64);
    assert_eq!(t.data.to_vec::<f64>(), vec![3.0, 1.0, 6.0, 4.0]);
    let t = parse_csv(text, "t.csv", &CsvOptions::default().column_indices(&[1])).unwrap();
    assert_eq!((t.names.clone(), t.data.to_vec::<f32>()), (vec!["b".to_string()], vec![2.0, 5.0]));
    assert_eq!(t.select(&["b"]).unwrap().shape(), &[2, 1]);
    assert_eq!(t.select(&["zz"]).unwrap_err().to_string(), "CsvTable: no column 'zz' (columns: b)");
}

#[test]
fn csv_only_parses_selected_columns_and_filters_rows() {
    let text = "Ticker,Date,Close\nAAPL,2000-03-01,1.5\nIBM,2000-03-01,100\nAAPL,2000-03-02,1.75\n";
    let opts = CsvOptions::default().columns(&["Close"]).filter_eq("Ticker", "AAPL");
    let t = parse_csv(text, "s.csv", &opts).unwrap();
    assert_eq!(t.data.to_vec::<f32>(), vec![1.5, 1.75]);
    assert_eq!(t.lines, vec![2, 4]);
}

#[test]
fn csv_handles_quotes_crlf_blank_lines_and_no_header() {
    let text = "x,\"name, with comma\"\r\n\"1\",\"2\"\r\n\r\n\"3\",4\r\n";
    let t = parse_csv(text, "q.csv", &CsvOptions::default()).unwrap();
    assert_eq!(t.names, ["x", "name, with comma"]);
    assert_eq!(t.data.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(t.lines, vec![2, 4]);
    // A quoted newline: the next record's line number accounts for it.
    let text = "a,b\n1,\"two\nlines\"\n2,3\n";
    let t = parse_csv(text, "q.csv", &CsvOptions::default().columns(&["a"])).unwrap();
    assert_eq!(t.lines, vec![2, 4]);
    let t =
        parse_csv("1;2\n3;4\n", "n.csv", &CsvOptions::default().has_header(false).delimiter(';')).unwrap();
    assert_eq!(t.names, ["c0", "c1"]);
    assert_eq!(t.data.shape(), &[2, 2]);
}

#[test]
fn csv_field_count_errors_name_line_and_field() {
    let o = CsvOptions::default();
    assert_eq!(err("a,b,c\n1,2,3\n4,5\n", &o), "t.csv:3:3: expected 3 fields (as in the header), found 2");
    assert_eq!(err("a,b\n1,2\n3,4,5\n", &o), "t.csv:3:3: expected 2 fields (as in the header), found 3");
    let nh = CsvOptions::default().has_header(false);
    assert_eq!(err("1,2\n3\n", &nh), "t.csv:2:2: expected 2 fields (as in the first row), found 1");
}

#[test]
fn csv_number_errors_name_the_column() {
    let o = CsvOptions::default();
    assert_eq!(err("a,b\n1,2\n3,x\n", &o), "t.csv:3:2: cannot parse 'x' as a number (column 'b')");
    assert_eq!(
        err("a,b\n1,2\n", &CsvOptions::default().has_header(false)),
        "t.csv:1:1: cannot parse 'a' as a number (column 'c0') (is line 1 a header? set CsvOptions::has_header)"
    );
    // Overlong values are cut in the message.
    let long = "9".repeat(30) + &"z".repeat(100);
    let m = err(&format!("a\n{long}\n"), &o);
    assert!(m.starts_with("t.csv:2:1: cannot parse '") && m.len() < 120, "{m}");
}

#[test]
fn csv_missing_value_policies() {
    let text = "a,b\n1,\n2,NA\n3,4\n";
    assert_eq!(err(text, &CsvOptions::default()), "t.csv:2:2: missing value in column 'b'");
    let t = parse_csv(text, "t.csv", &CsvOptions::default().missing(Missing::Fill(-1.0))).unwrap();
    assert_eq!(t.data.to_vec::<f32>(), vec![1.0, -1.0, 2.0, -1.0, 3.0, 4.0]);
    let t = parse_csv(text, "t.csv", &CsvOptions::default().missing(Missing::Nan)).unwrap();
    let v = t.data.to_vec::<f32>();
    assert!(v[1].is_nan() && v[3].is_nan() && v[5] == 4.0);
    let t = parse_csv(text, "t.csv", &CsvOptions::default().missing(Missing::DropRow)).unwrap();
    assert_eq!((t.data.to_vec::<f32>(), t.lines), (vec![3.0, 4.0], vec![4]));
    // Missing values in unselected columns do not matter.
    let t = parse_csv(text, "t.csv", &CsvOptions::default().columns(&["a"])).unwrap();
    assert_eq!(t.rows(), 3);
}

#[test]
fn csv_quote_errors() {
    let o = CsvOptions::default();
    assert_eq!(
        err("a,b\n1,2\n3,\"4\n5,6\n", &o),
        "t.csv:3:2: unterminated quoted field (no closing '\"' before the end of the file)"
    );
    assert_eq!(
        err("a,b\n1,\"2\"x\n", &o),
        "t.csv:2:2: unexpected text after a closing quote (a quote inside a quoted field must be doubled: \"\")"
    );
}

#[test]
fn csv_structure_errors() {
    let o = CsvOptions::default();
    assert_eq!(err("", &o), "t.csv:1:1: empty file: expected a header line");
    assert_eq!(err("", &CsvOptions::default().has_header(false)), "t.csv:1:1: empty file: no data rows");
    assert_eq!(err("a,b\n", &o), "t.csv:1:1: no data rows");
    assert_eq!(
        err("t,v\nA,1\nB,2\n", &CsvOptions::default().columns(&["v"]).filter_eq("t", "C")),
        "t.csv:3:1: no data rows left after filtering / dropping"
    );
    assert_eq!(
        err("a,b\n1,2\n", &CsvOptions::default().columns(&["z"])),
        "t.csv: column 'z' is not in the header (columns: a, b)"
    );
    assert_eq!(
        err("a,b\n1,2\n", &CsvOptions::default().filter_eq("q", "1")),
        "t.csv: filter column 'q' is not in the header (columns: a, b)"
    );
    assert_eq!(
        err("a,b\n1,2\n", &CsvOptions::default().column_indices(&[2])),
        "t.csv: column index 2 is out of range: the file has 2 columns"
    );
    assert_eq!(
        err("1,2\n", &CsvOptions::default().has_header(false).columns(&["a"])),
        "t.csv: column 'a' selected by name, but the file has no header (CsvOptions::has_header)"
    );
    assert_eq!(
        err("a\n1\n", &CsvOptions::default().dtype(DType::I64)),
        "t.csv: CsvOptions::dtype must be F32 or F64, got int64"
    );
}

#[test]
fn csv_file_errors() {
    let p = tmp("bad_utf8.csv");
    std::fs::write(&p, b"a,b\n1,2\n3,\xff\n").unwrap();
    let e = read_csv(&p, &CsvOptions::default()).unwrap_err();
    assert!(matches!(e, NnError::Parse { line: 3, column: 2, .. }), "{e}");
    assert!(e.to_string().ends_with(":3:2: invalid UTF-8 (byte offset 10)"), "{e}");

    let missing = tmp("does_not_exist.csv");
    let e = read_csv(&missing, &CsvOptions::default()).unwrap_err();
    assert!(matches!(e, NnError::Io { .. }));
    assert!(e.to_string().contains("does_not_exist.csv"), "{e}");

    let p = tmp("big.csv");
    std::fs::write(&p, "a\n1\n2\n").unwrap();
    let o = CsvOptions { max_bytes: 4, ..Default::default() };
    let e = read_csv(&p, &o).unwrap_err().to_string();
    assert!(e.ends_with("big.csv: file is 6 bytes, over the limit of 4 (CsvOptions::max_bytes)"), "{e}");
}

mod csv_fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        // Hostile input never panics: any bytes give a table or an error.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(
            prop_oneof![Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'1'), Just(b'a'), Just(b' '), any::<u8>()],
            0..200)) {
            let p = tmp(&format!("fuzz_{}.csv", std::process::id()));
            std::fs::write(&p, &bytes).unwrap();
            for o in [CsvOptions::default(), CsvOptions::default().has_header(false).missing(Missing::DropRow)] {
                match read_csv(&p, &o) {
                    Ok(t) => prop_assert_eq!(t.data.shape()[0], t.lines.len()),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ DataLoader

fn ids(batch: &Tensor) -> Vec<usize> {
    batch.to_vec::<f32>().into_iter().map(|v| v as usize).collect()
}

#[test]
fn loader_in_order_without_shuffle_and_drop_last() {
    let ds = TensorDataset::new(Tensor::arange(10));
    let mut l = DataLoader::new(ds, 4);
    let b: Vec<Vec<usize>> = l.iter().map(|b| ids(&b)).collect();
    assert_eq!(b, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    assert_eq!((l.num_batches(), l.num_examples()), (3, 10));
    let mut l = DataLoader::new(TensorDataset::new(Tensor::arange(10)), 4).drop_last(true);
    let b: Vec<Vec<usize>> = l.iter().map(|b| ids(&b)).collect();
    assert_eq!(b, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
    assert_eq!((l.num_batches(), l.num_examples()), (2, 8));
    // Exactly divisible: drop_last changes nothing.
    let l = DataLoader::new(TensorDataset::new(Tensor::arange(8)), 4).drop_last(true);
    assert_eq!(l.epoch(0).len(), 2);
}

#[test]
fn loader_shuffle_is_a_seeded_per_epoch_permutation() {
    let mk = |seed| DataLoader::new(TensorDataset::new(Tensor::arange(50)), 7).shuffle(seed);
    let mut a = mk(3);
    let mut b = mk(3);
    let ea: Vec<Vec<Vec<usize>>> = (0..3).map(|_| a.iter().map(|x| ids(&x)).collect()).collect();
    let eb: Vec<Vec<Vec<usize>>> = (0..3).map(|_| b.iter().map(|x| ids(&x)).collect()).collect();
    assert_eq!(ea, eb, "same seed, same batches");
    for e in &ea {
        let mut all: Vec<usize> = e.concat();
        assert_ne!(all, (0..50).collect::<Vec<_>>(), "shuffled");
        all.sort();
        assert_eq!(all, (0..50).collect::<Vec<_>>(), "each example exactly once per epoch");
    }
    assert_ne!(ea[0], ea[1], "a new order each epoch");
    let other: Vec<Vec<usize>> = mk(4).iter().map(|x| ids(&x)).collect();
    assert_ne!(other, ea[0], "another seed, another order");
    // Replaying an epoch, and resuming with set_epoch.
    assert_eq!(a.epoch(1).map(|x| ids(&x)).collect::<Vec<_>>(), ea[1]);
    let mut c = mk(3);
    c.set_epoch(2);
    assert_eq!(c.iter().map(|x| ids(&x)).collect::<Vec<_>>(), ea[2]);
    assert_eq!(c.next_epoch(), 3);
}

#[test]
fn loader_batches_tuples_with_matching_rows() {
    let x = Tensor::from_vec((0..20).map(|i| i as f32).collect(), &[10, 2]);
    let y = Tensor::from_vec((0..10).map(|i| i * 100).collect::<Vec<i64>>(), &[10]);
    let mut l = DataLoader::new(TensorDataset::new((x, y)), 3).shuffle(1);
    for (xb, yb) in l.iter() {
        assert_eq!(xb.shape()[1], 2);
        let xv = xb.to_vec::<f32>();
        for (r, &yv) in yb.to_vec::<i64>().iter().enumerate() {
            let i = yv / 100;
            assert_eq!((xv[2 * r], xv[2 * r + 1]), ((2 * i) as f32, (2 * i + 1) as f32));
        }
    }
}

#[test]
fn prefetch_gives_the_same_batches() {
    let ds = Arc::new(TensorDataset::new(Tensor::arange(37)));
    let plain = DataLoader::from_arc(ds.clone(), 5).shuffle(9);
    let pre = DataLoader::from_arc(ds, 5).shuffle(9).prefetch(2);
    for e in 0..3 {
        let it = pre.epoch(e);
        assert!(it.is_prefetching());
        assert_eq!(it.len(), 8);
        let a: Vec<Vec<usize>> = plain.epoch(e).map(|b| ids(&b)).collect();
        let b: Vec<Vec<usize>> = it.map(|b| ids(&b)).collect();
        assert_eq!(a, b);
    }
}

/// Counts `get` calls and sleeps a little in each (so the worker is mid-epoch when dropped).
struct Slow {
    calls: Arc<AtomicUsize>,
    panic_at: Option<usize>,
}

impl Dataset for Slow {
    type Item = Tensor;
    fn len(&self) -> usize {
        1000
    }
    fn get(&self, i: usize) -> Tensor {
        if Some(i) == self.panic_at {
            panic!("example {i} is broken");
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_micros(200));
        Tensor::scalar(i as f32)
    }
}

#[test]
fn prefetch_stops_its_thread_when_dropped_early() {
    let calls = Arc::new(AtomicUsize::new(0));
    let l = DataLoader::new(Slow { calls: calls.clone(), panic_at: None }, 1).prefetch(2);
    {
        let mut it = l.epoch(0);
        assert_eq!(it.next().map(|t| t.item()), Some(0.0));
        // Give the worker time to fill the channel and block on it.
        std::thread::sleep(std::time::Duration::from_millis(20));
    } // drop: must signal, unblock and join the worker (a hang here fails the test run)
    let after_drop = calls.load(Ordering::SeqCst);
    // 1 consumed + 2 buffered + at most 1 being built when the stop came.
    assert!(after_drop <= 4, "worker kept going after the drop: {after_drop} examples built");
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), after_drop, "the worker was joined, nothing runs after drop");
    // Dropping an iterator that was never polled is fine too.
    drop(l.epoch(1));
}

#[test]
fn prefetch_reraises_a_dataset_panic() {
    let l = DataLoader::new(Slow { calls: Arc::new(AtomicUsize::new(0)), panic_at: Some(3) }, 2).prefetch(1);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.epoch(0).count()));
    let payload = r.unwrap_err();
    let msg = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert_eq!(msg, "example 3 is broken");
}

#[test]
fn map_batches_is_seeded_per_epoch_and_batch_with_or_without_prefetch() {
    use adjoint_tensor::random::{uniform, Key};
    let mk = |prefetch| {
        DataLoader::new(TensorDataset::new(Tensor::zeros(&[9, 2])), 3)
            .prefetch(prefetch)
            .map_batches(11, |x: Tensor, key: &Key| {
                &x + &Tensor::from_array(uniform(key, x.shape(), 0.0, 1.0, x.dtype()))
            })
    };
    let (plain, pre) = (mk(0), mk(2));
    let e0: Vec<Vec<f32>> = plain.epoch(0).map(|b| b.to_vec()).collect();
    assert_eq!(e0, pre.epoch(0).map(|b| b.to_vec()).collect::<Vec<Vec<f32>>>());
    assert_ne!(e0, plain.epoch(1).map(|b| b.to_vec()).collect::<Vec<Vec<f32>>>());
    assert_ne!(e0[0], e0[1]);
    // The key of batch b of epoch e is Key(seed).fold_in(e).fold_in(b).
    let want = uniform(&Key::new(11).fold_in(1).fold_in(2), &[3, 2], 0.0, 1.0, DType::F32).to_vec::<f32>();
    assert_eq!(plain.epoch(1).nth(2).unwrap().to_vec::<f32>(), want);
}

#[test]
#[should_panic(expected = "batch_size must be at least 1")]
fn loader_rejects_batch_size_zero() {
    let _ = DataLoader::new(TensorDataset::new(Tensor::arange(3)), 0);
}

// --------------------------------------------------------------------------------- collate

#[derive(Clone, Params)]
#[params(crate = adjoint_core)]
struct Example {
    image: Tensor,
    label: Tensor,
    #[params(skip)]
    source: &'static str,
}

#[test]
fn collate_stacks_every_leaf_of_a_struct() {
    let ex =
        |i: i64| Example { image: Tensor::full(&[2, 2], i as f64), label: Tensor::scalar(i), source: "s" };
    let b = collate(&[ex(1), ex(2), ex(3)]);
    assert_eq!(b.image.shape(), &[3, 2, 2]);
    assert_eq!(b.label.to_vec::<i64>(), vec![1, 2, 3]);
    assert_eq!(b.image.narrow(0, 2, 1).to_vec::<f32>(), vec![3.0; 4]);
    assert_eq!(b.source, "s");
}

/// The default `get_batch` (get + collate) and `Subset`.
struct Squares;
impl Dataset for Squares {
    type Item = (Tensor, Tensor);
    fn len(&self) -> usize {
        6
    }
    fn get(&self, i: usize) -> (Tensor, Tensor) {
        (Tensor::scalar(i as f64), Tensor::from_vec(vec![(i * i) as f64, 1.0], &[2]))
    }
}

#[test]
fn default_get_batch_and_subset() {
    let (x, y) = Squares.get_batch(&[4, 1]);
    assert_eq!(x.to_vec::<f64>(), vec![4.0, 1.0]);
    assert_eq!(y.to_vec::<f64>(), vec![16.0, 1.0, 1.0, 1.0]);
    let sub = Subset::new(Arc::new(Squares), vec![5, 0, 2]);
    assert_eq!(sub.len(), 3);
    let all: Vec<f64> = DataLoader::new(sub, 2).iter().flat_map(|(x, _)| x.to_vec::<f64>()).collect();
    assert_eq!(all, vec![5.0, 0.0, 2.0]);
}

// ---------------------------------------------------------------------------------- splits

#[test]
fn random_split_partitions_and_is_seeded() {
    let s = random_split(101, 0.2, 0.1, 5);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (71, 20, 10));
    let mut all: Vec<usize> = [s.train.clone(), s.val.clone(), s.test.clone()].concat();
    all.sort();
    assert_eq!(all, (0..101).collect::<Vec<_>>());
    assert_eq!(s, random_split(101, 0.2, 0.1, 5));
    assert_ne!(s.val, random_split(101, 0.2, 0.1, 6).val);
    assert_ne!(s.val, (71..91).collect::<Vec<_>>(), "not in order");
    let (tr, va, te) = s.apply(&(Tensor::arange(101), Tensor::arange(101)));
    assert_eq!(ids(&va.0), s.val);
    assert_eq!(ids(&te.1), s.test);
    assert_eq!(tr.0.shape(), &[71]);
}

#[test]
fn time_split_keeps_order() {
    let s = time_split(10, 0.2, 0.2);
    assert_eq!(s.train, vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(s.val, vec![6, 7]);
    assert_eq!(s.test, vec![8, 9]);
    let s = time_split(10, 0.0, 0.0);
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (10, 0, 0));
    assert_eq!(take_rows(&Tensor::arange(10), &s.test).shape(), &[0]);
}

#[test]
#[should_panic(expected = "fractions must lie in [0, 1] and sum to at most 1")]
fn split_rejects_bad_fractions() {
    let _ = random_split(10, 0.7, 0.5, 0);
}

// --------------------------------------------------------------------------------- windows

#[test]
fn windows_cut_inputs_and_targets() {
    // Two features: t and 10t.
    let series = Tensor::from_vec((0..8).flat_map(|t| [t as f32, 10.0 * t as f32]).collect(), &[8, 2]);
    let w = Windows::new(&series, 3, 2).unwrap();
    assert_eq!(w.len(), 4); // starts 0..=3
    let (x, y) = w.get(3);
    assert_eq!(x.to_vec::<f32>(), vec![3.0, 30.0, 4.0, 40.0, 5.0, 50.0]);
    assert_eq!(y.to_vec::<f32>(), vec![6.0, 60.0, 7.0, 70.0]);
    let (xs, ys) = w.to_tensors();
    assert_eq!((xs.shape(), ys.shape()), (&[4usize, 3, 2][..], &[4usize, 2, 2][..]));
    let (xb, yb) = w.get_batch(&[0, 1, 2, 3]);
    assert_eq!(xs.to_vec::<f32>(), xb.to_vec::<f32>());
    assert_eq!(ys.to_vec::<f32>(), yb.to_vec::<f32>());

    // Stride and separate targets (feature 0 only, as [T]).
    let target = Tensor::arange(8);
    let w = Windows::with_targets(&series, &target, 2, 1).unwrap().stride(3);
    assert_eq!(w.len(), 2); // starts 0, 3 (start 6 would need t = 8)
    assert_eq!(w.starts(1), (3, 5));
    let (_, y) = w.to_tensors();
    assert_eq!(y.to_vec::<f32>(), vec![2.0, 5.0]);
    // Loader over windows.
    let n: usize = DataLoader::new(w, 8).iter().map(|(x, _)| x.shape()[0]).sum();
    assert_eq!(n, 2);
}

#[test]
fn windows_errors() {
    let s = Tensor::arange(4);
    let e = Windows::new(&s, 3, 2).err().unwrap().to_string();
    assert_eq!(e, "Windows: a sequence of 4 steps is too short for a window of 3 plus a horizon of 2");
    let e = Windows::with_targets(&s, &Tensor::arange(5), 1, 1).err().unwrap().to_string();
    assert_eq!(e, "Windows: inputs have 4 time steps but targets have 5");
    let e = Windows::new(&Tensor::scalar(1.0f32), 1, 0).err().unwrap().to_string();
    assert_eq!(e, "Windows: inputs must have a time axis, got a scalar");
}

// ---------------------------------------------------------------------------- standardiser

#[test]
fn standardizer_is_fitted_on_train_and_applied_to_the_rest() {
    let train: Vec<[f64; 3]> = vec![[1.0, 5.0, 2.0], [2.0, 5.0, 4.0], [6.0, 5.0, 9.0], [3.0, 5.0, 1.0]];
    let x = Tensor::from_vec(train.concat(), &[4, 3]);
    let s = Standardizer::fit(&x).unwrap();
    // Reference statistics by hand (population std).
    for j in 0..3 {
        let col: Vec<f64> = train.iter().map(|r| r[j]).collect();
        let m = col.iter().sum::<f64>() / 4.0;
        let sd = (col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 4.0).sqrt();
        let sd = if sd == 0.0 { 1.0 } else { sd };
        assert!((s.mean().to_vec::<f64>()[j] - m).abs() < 1e-12);
        assert!((s.std().to_vec::<f64>()[j] - sd).abs() < 1e-12);
    }
    let z = s.transform(&x).to_vec::<f64>();
    for j in [0, 2] {
        let col: Vec<f64> = (0..4).map(|i| z[3 * i + j]).collect();
        assert!(col.iter().sum::<f64>().abs() < 1e-12);
        assert!((col.iter().map(|v| v * v).sum::<f64>() / 4.0 - 1.0).abs() < 1e-12);
    }
    assert!((0..4).all(|i| z[3 * i + 1] == 0.0), "constant column maps to 0");
    // Validation data uses the training statistics (not its own).
    let val = Tensor::from_vec(vec![3.0, 5.0, 4.0], &[1, 3]);
    let zv = s.transform(&val).to_vec::<f64>();
    assert!((zv[0] - (3.0 - 3.0) / s.std().to_vec::<f64>()[0]).abs() < 1e-12);
    assert!((zv[2] - (4.0 - 4.0)).abs() < 1e-12);
    // Windows [n, w, F] broadcast, f32 input, and the inverse.
    let win = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 6.0, 5.0, 9.0], &[1, 2, 3]);
    let back = s.inverse_transform(&s.transform(&win));
    assert_eq!(back.dtype(), DType::F32);
    for (a, b) in back.to_vec::<f32>().iter().zip(win.to_vec::<f32>()) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn standardizer_errors() {
    let e = Standardizer::fit(&Tensor::from_vec(vec![1.0f32, f32::NAN, 2.0, 3.0], &[2, 2])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Standardizer::fit: feature 1 (flat index over shape [2]) has NaN or infinite values"
    );
    let e = Standardizer::fit(&Tensor::zeros(&[0, 3])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Standardizer::fit: needs a float tensor with at least one row, got float32 of shape [0, 3]"
    );
}
