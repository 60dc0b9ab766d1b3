//! The data sets barl knows by name: where each sits in a data folder, its
//! size, rows and SHA-256 (those of the copy shipped in `data/`), and the
//! public file on the Hugging Face Hub it can be downloaded from, where one is
//! known to publish it in this format.

/// One named data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataSet {
    /// The name commands take (`--benchmarks gsm8k`, `source = "math_train"`).
    pub name: &'static str,
    /// Path inside a data folder.
    pub file: &'static str,
    pub rows: usize,
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: &'static str,
    /// Where it is published on the Hub in this format, if anywhere.
    pub hub: Option<HubFile>,
}

/// A file in a dataset repository of the Hugging Face Hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HubFile {
    pub repo: &'static str,
    pub path: &'static str,
}

impl HubFile {
    /// The Hub's download URL of the file: `{endpoint}/datasets/{repo}/resolve/{revision}/{path}`.
    pub fn url(&self, endpoint: &str, revision: &str) -> String {
        format!(
            "{}/datasets/{}/resolve/{revision}/{}",
            endpoint.trim_end_matches('/'),
            self.repo,
            self.path
        )
    }
}

const fn hub(repo: &'static str, path: &'static str) -> Option<HubFile> {
    Some(HubFile { repo, path })
}

/// Every known set, evaluation benchmarks first (the order of
/// [`super::BENCHMARKS`]).
pub const DATA_SETS: &[DataSet] = &[
    DataSet {
        name: "gsm8k",
        file: "benchmarks/gsm8k.jsonl",
        rows: 1319,
        bytes: 749738,
        sha256: "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
        // The Hub's openai/gsm8k holds the split as parquet, not these lines.
        hub: None,
    },
    DataSet {
        name: "math500",
        file: "benchmarks/math500.jsonl",
        rows: 500,
        bytes: 446564,
        sha256: "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
        hub: hub("HuggingFaceH4/MATH-500", "test.jsonl"),
    },
    DataSet {
        name: "aime24",
        file: "benchmarks/aime24.jsonl",
        rows: 30,
        bytes: 156944,
        sha256: "af2b8bd2aa911b6333ad0df32f3ca05c7ae8ed10f1731f4372c8ae26990bf7ac",
        hub: hub("math-ai/aime24", "test.jsonl"),
    },
    DataSet {
        name: "aime25",
        file: "benchmarks/aime25.jsonl",
        rows: 30,
        bytes: 15785,
        sha256: "9da60057135388687f3c594476b211538d0be8e7f3b2de6e680513281412c0ec",
        // Hub copies of AIME 2025 use other fields (`problem`, `id`).
        hub: None,
    },
    DataSet {
        name: "amc23",
        file: "benchmarks/amc23.jsonl",
        rows: 40,
        bytes: 27631,
        sha256: "43707e1ca784602d8479de24ee8ce36609dbebc46dd152b0b12a46611aa898a4",
        hub: hub("math-ai/amc23", "test.jsonl"),
    },
    DataSet {
        name: "minerva_math",
        file: "benchmarks/minerva_math.jsonl",
        rows: 272,
        bytes: 247267,
        sha256: "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
        hub: hub("math-ai/minervamath", "test.jsonl"),
    },
    DataSet {
        name: "olympiadbench",
        file: "benchmarks/olympiadbench.jsonl",
        rows: 675,
        bytes: 1493870,
        sha256: "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
        hub: hub("math-ai/olympiadbench", "test.jsonl"),
    },
    DataSet {
        name: "college_math",
        file: "benchmarks/college_math.jsonl",
        rows: 2818,
        bytes: 1188309,
        sha256: "91131bc4a355b884fc63ef7c4f048c35adb030004a4cb07b1475698f120aa4a6",
        hub: None,
    },
    DataSet {
        name: "gsm8k_train",
        file: "train/gsm8k_train.jsonl",
        rows: 7473,
        bytes: 4166206,
        sha256: "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
        hub: None,
    },
    DataSet {
        name: "math_train",
        file: "train/math_train.parquet",
        rows: 7500,
        bytes: 998582,
        sha256: "1b9066498c2e21162e043b6244e36c17aa684d905ac7f6d7edc732e229afd5b1",
        // verl's preprocessing script writes it locally; no one publishes it.
        hub: None,
    },
];

/// The set called `name`.
pub fn data_set(name: &str) -> Option<&'static DataSet> {
    DATA_SETS.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_names_every_benchmark_in_order() {
        let names: Vec<&str> = DATA_SETS.iter().map(|d| d.name).collect();
        assert_eq!(names, super::super::BENCHMARKS);
    }

    #[test]
    fn the_catalogue_agrees_with_sha256sums_and_the_shipped_files() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        let sums = std::fs::read_to_string(root.join("SHA256SUMS")).unwrap();
        assert_eq!(sums.lines().count(), DATA_SETS.len());
        for d in DATA_SETS {
            assert!(
                sums.contains(&format!("{}  {}", d.sha256, d.file)),
                "{}",
                d.name
            );
            let len = std::fs::metadata(root.join(d.file)).unwrap().len();
            assert_eq!(len, d.bytes, "{}", d.name);
        }
    }

    #[test]
    fn hub_urls_follow_the_resolve_layout() {
        let f = data_set("math500").unwrap().hub.unwrap();
        assert_eq!(
            f.url("https://huggingface.co/", "main"),
            "https://huggingface.co/datasets/HuggingFaceH4/MATH-500/resolve/main/test.jsonl"
        );
    }
}
