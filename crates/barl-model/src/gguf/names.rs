//! llama.cpp tensor names and layout back to Hugging Face: names, and the q/k row permutation.

/// The Hugging Face name for a llama.cpp tensor name, or `None` if unknown.
pub fn hf_tensor_name(gguf_name: &str) -> Option<String> {
    let fixed = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (part, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let hf = match part {
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "attn_norm" => "input_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// A q/k matrix whose rows do not split into `n_head` heads of even size.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot un-permute {rows} rows x {cols} into {n_head} heads")]
pub struct ShapeError {
    pub rows: usize,
    pub cols: usize,
    pub n_head: usize,
}

/// Undoes llama.cpp's q/k row permutation for interleaved rotary.
///
/// llama.cpp's converter stores `w.reshape(n_head, 2, hd/2, cols).swapaxes(1, 2)`, i.e.
/// GGUF row `h*hd + 2*i + j` is Hugging Face row `h*hd + j*hd/2 + i` (`i < hd/2`, `j < 2`).
/// `data` is row-major `[rows, cols]` (`cols = 1` for a bias).
pub fn unpermute_qk(
    data: &[f32],
    rows: usize,
    cols: usize,
    n_head: usize,
) -> Result<Vec<f32>, ShapeError> {
    if n_head == 0 || !rows.is_multiple_of(2 * n_head) || data.len() != rows * cols {
        return Err(ShapeError { rows, cols, n_head });
    }
    let hd = rows / n_head;
    let half = hd / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let src = (h * hd + 2 * i + j) * cols;
                let dst = (h * hd + j * half + i) * cols;
                out[dst..dst + cols].copy_from_slice(&data[src..src + cols]);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_cpp_names_map_to_hugging_face() {
        for (g, hf) in [
            ("token_embd.weight", "model.embed_tokens.weight"),
            ("output.weight", "lm_head.weight"),
            (
                "blk.3.attn_q.weight",
                "model.layers.3.self_attn.q_proj.weight",
            ),
            ("blk.0.attn_k.bias", "model.layers.0.self_attn.k_proj.bias"),
            (
                "blk.11.ffn_norm.weight",
                "model.layers.11.post_attention_layernorm.weight",
            ),
        ] {
            assert_eq!(hf_tensor_name(g).as_deref(), Some(hf), "{g}");
        }
        for g in [
            "blk.x.attn_q.weight",
            "blk.1.attn_q.scale",
            "rope_freqs.weight",
        ] {
            assert_eq!(hf_tensor_name(g), None, "{g}");
        }
    }

    #[test]
    fn unpermute_undoes_the_converter_permutation() {
        // Two heads of head_dim 4, one column: HF rows 0..8. The converter
        // stores GGUF row h*4 + 2i + j = HF row h*4 + j*2 + i.
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        let gguf: Vec<f32> = [0, 2, 1, 3, 4, 6, 5, 7].iter().map(|&r| r as f32).collect();
        assert_eq!(unpermute_qk(&gguf, 8, 1, 2).unwrap(), hf);
        // With 2 columns whole rows move.
        let two: Vec<f32> = gguf.iter().flat_map(|&r| [r, 10.0 + r]).collect();
        let back = unpermute_qk(&two, 8, 2, 2).unwrap();
        assert_eq!(&back[..4], &[0.0, 10.0, 1.0, 11.0]);
        assert!(unpermute_qk(&hf, 8, 1, 3).is_err());
    }
}
