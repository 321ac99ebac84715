using Rlhf.Model;

namespace Rlhf.Onnx;

/// <summary>
/// Writes a <see cref="TransformerModel"/> as an ONNX graph (opset 17, standard operators only) with the engine's
/// forward semantics: GPT-2 (LayerNormalization, GELU-tanh, learned positions) or Llama (RMSNorm from ReduceMean and
/// Sqrt, SwiGLU, rotate_half RoPE from a cos/sin table gathered by position ids, grouped-query attention); padded keys
/// and future keys are excluded and a query with no visible key outputs zeros, as in the engine.
/// </summary>
public static class OnnxExporter
{
    private const float MaskedScore = -1e30f;

    /// <summary>
    /// Causal LM graph: inputs input_ids [B,T], attention_mask [B,P+T], position_ids [B,T] (int64),
    /// past_key_values.{i}.key|value [B,kv,P,hd] (P may be 0); outputs logits [B,T,V], present.{i}.key|value
    /// [B,kv,P+T,hd], optionally values [B,T]; optionally the LoRA matrices as inputs (see <see cref="OnnxExportOptions"/>).
    /// </summary>
    public static void ExportCausalLm(TransformerModel model, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new OnnxExportOptions();
        if (options.ValueHead is { } vh && (vh.ModelDim != model.Config.ModelDim || vh.Outputs != 1 || vh.Pooling != HeadPooling.PerToken))
            throw new ArgumentException($"value head must be per-token with 1 output over d = {model.Config.ModelDim}.", nameof(options));
        var e = new Emitter(model, options, withCache: true);
        string hidden = e.Body();
        e.LmHead(hidden);
        if (options.ValueHead != null) e.ValueHead(hidden, options.ValueHead);
        e.Save(path, options.ExternalDataThreshold);
    }

    /// <summary>
    /// Sequence classifier graph (the engine's model + a LastToken <see cref="ScoreHead"/>): inputs input_ids and
    /// attention_mask [B,T] (int64; positions are max(cumsum(mask) − 1, 0) inside the graph) -> logits [B,C] at the last
    /// non-pad token of each row, as <see cref="ScoreHead.Forward"/> computes.
    /// </summary>
    public static void ExportSequenceClassifier(TransformerModel model, ScoreHead head, string path, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(head);
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (head.Pooling != HeadPooling.LastToken || head.ModelDim != model.Config.ModelDim)
            throw new ArgumentException($"classifier head must pool the last token over d = {model.Config.ModelDim}.", nameof(head));
        options ??= new OnnxExportOptions();
        var e = new Emitter(model, options with { ValueHead = null }, withCache: false);
        string hidden = e.Body();
        e.ClassifierHead(hidden, head);
        e.Save(path, options.ExternalDataThreshold);
    }

    private sealed class Emitter
    {
        private readonly TransformerModel model;
        private readonly TransformerConfig c;
        private readonly OnnxGraphBuilder g;
        private readonly LoraAdapter? lora;
        private readonly bool withCache;
        private string shapeBT = "", allowed = "", allowedF = "", mask = "";
        private string? cos, sin;

        public Emitter(TransformerModel model, OnnxExportOptions options, bool withCache)
        {
            this.model = model;
            c = model.Config;
            this.withCache = withCache;
            g = new OnnxGraphBuilder(c.Family == ModelFamily.Gpt2 ? "gpt2" : "llama", 17);
            lora = options.UseAdapter ? model.Adapter : null;
            if (options.LoraInputs && lora is null) throw new ArgumentException("LoraInputs needs an attached adapter (it defines rank, targets and scale).", nameof(options));
            if (lora is null) return;
            foreach (var t in lora.Tensors)
            {
                var data = new ReadOnlyMemory<float>(lora.Parameters, t.Offset, t.Length);
                if (options.LoraInputs) g.InputWithDefault(t.Name, data, t.Shape[0], t.Shape[1]);
                else g.Initializer(t.Name, data, t.Shape[0], t.Shape[1]);
            }
        }

        /// <summary>Embeddings and every block; returns the final-normed hidden state [N, d] (N = B·T).</summary>
        public string Body()
        {
            var p = model.Parameters;
            int d = c.ModelDim;
            string ids = g.Input(OnnxNames.InputIds, OnnxDataType.Int64, "batch", "sequence");
            mask = g.Input(OnnxNames.AttentionMask, OnnxDataType.Int64, "batch", withCache ? "total_sequence" : "sequence");
            string pos;
            if (withCache)
            {
                pos = g.Input(OnnxNames.PositionIds, OnnxDataType.Int64, "batch", "sequence");
            }
            else
            {
                // max(cumsum(mask) − 1, 0), the engine's positions for a full (uncached) sequence.
                string cum = g.Node("CumSum", [mask, g.ConstInt64([1], scalar: true)]);
                pos = g.Node("Max", [g.Node("Sub", [cum, g.ConstInt64([1], scalar: true)]), g.ConstInt64([0], scalar: true)]);
            }

            shapeBT = g.Node("Shape", [ids]);
            string seqLen = g.Node("Gather", [shapeBT, g.ConstInt64([1], scalar: true)]);
            string totalLen = g.Node("Gather", [g.Node("Shape", [mask]), g.ConstInt64([1], scalar: true)]);
            string flatPos = g.Node("Reshape", [pos, g.ConstInt64([-1])]);
            var ly = model.Layout;
            string wte = g.Initializer(ly.Tensors[0].Name, new ReadOnlyMemory<float>(p, ly.TokenEmbedding, c.VocabSize * d), c.VocabSize, d);
            string x = g.Node("Gather", [wte, g.Node("Reshape", [ids, g.ConstInt64([-1])])]);
            if (ly.PositionEmbedding >= 0)
            {
                string wpe = g.Initializer("transformer.wpe.weight", new ReadOnlyMemory<float>(p, ly.PositionEmbedding, c.ContextLength * d), c.ContextLength, d);
                x = g.Node("Add", [x, g.Node("Gather", [wpe, flatPos])]);
            }
            else
            {
                var (cosTable, sinTable) = RopeTables(c.HeadDim, c.ContextLength, c.RopeTheta);
                int half = c.HeadDim / 2;
                string ct = g.Initializer("rope.cos", cosTable, c.ContextLength, half);
                string st = g.Initializer("rope.sin", sinTable, c.ContextLength, half);
                cos = g.Node("Unsqueeze", [g.Node("Gather", [ct, flatPos]), g.ConstInt64([1])]);
                sin = g.Node("Unsqueeze", [g.Node("Gather", [st, flatPos]), g.ConstInt64([1])]);
            }

            // allowed [B,1,1,T,S]: key j is visible to query t (absolute position S−T+t) when j ≤ S−T+t and mask[b,j] ≠ 0.
            string keyIdx = g.Node("Range", [g.ConstInt64([0], scalar: true), totalLen, g.ConstInt64([1], scalar: true)]);
            string queryIdx = g.Node("Range", [g.Node("Sub", [totalLen, seqLen]), totalLen, g.ConstInt64([1], scalar: true)]);
            string causal = g.Node("LessOrEqual", [keyIdx, g.Node("Unsqueeze", [queryIdx, g.ConstInt64([1])])]);
            string keyOk = g.Node("Unsqueeze", [g.Node("Cast", [mask], null, OnnxGraphBuilder.Attr("to", (long)OnnxDataType.Bool)), g.ConstInt64([1, 2, 3])]);
            allowed = g.Node("And", [keyOk, causal]);
            allowedF = g.Node("Cast", [allowed], null, OnnxGraphBuilder.Attr("to", (long)OnnxDataType.Float));
            for (int l = 0; l < c.LayerCount; l++) x = Block(l, x);
            return Norm(x, ly.FinalNormWeight, ly.FinalNormBias, c.Family == ModelFamily.Gpt2 ? "transformer.ln_f.weight" : "model.norm.weight");
        }

        public void LmHead(string hidden)
        {
            var ly = model.Layout;
            string head = c.TiedEmbeddings ? ly.Tensors[0].Name : g.Initializer("lm_head.weight", new ReadOnlyMemory<float>(model.Parameters, ly.LmHead, c.VocabSize * c.ModelDim), c.VocabSize, c.ModelDim);
            string logits = g.Node("Gemm", [hidden, head], null, OnnxGraphBuilder.Attr("transB", 1L));
            logits = g.Node("Reshape", [logits, g.Node("Concat", [shapeBT, g.ConstInt64([c.VocabSize])], null, OnnxGraphBuilder.Attr("axis", 0L))]);
            g.Output(logits, OnnxNames.Logits, OnnxDataType.Float, "batch", "sequence", c.VocabSize);
        }

        public void ValueHead(string hidden, ScoreHead head)
        {
            int d = c.ModelDim;
            string w = g.Initializer(head.Tensors[0].Name, new ReadOnlyMemory<float>(head.Parameters, 0, d), 1, d);
            string b = g.Initializer(head.Tensors[1].Name, new ReadOnlyMemory<float>(head.Parameters, d, 1), 1);
            string v = g.Node("Gemm", [hidden, w, b], null, OnnxGraphBuilder.Attr("transB", 1L));
            g.Output(g.Node("Reshape", [v, shapeBT]), OnnxNames.Values, OnnxDataType.Float, "batch", "sequence");
        }

        public void ClassifierHead(string hidden, ScoreHead head)
        {
            int d = c.ModelDim, k = head.Outputs;
            string h3 = g.Node("Reshape", [hidden, g.Node("Concat", [shapeBT, g.ConstInt64([d])], null, OnnxGraphBuilder.Attr("axis", 0L))]);
            // Index of the last real token: argmax over t of mask·(t + 1) (strictly increasing on real tokens).
            string seqLen = g.Node("Gather", [shapeBT, g.ConstInt64([1], scalar: true)]);
            string ramp = g.Node("Range", [g.ConstInt64([1], scalar: true), g.Node("Add", [seqLen, g.ConstInt64([1], scalar: true)]), g.ConstInt64([1], scalar: true)]);
            string scoresF = g.Node("Cast", [g.Node("Mul", [mask, ramp])], null, OnnxGraphBuilder.Attr("to", (long)OnnxDataType.Float));
            string last = g.Node("ArgMax", [scoresF], null, OnnxGraphBuilder.Attr("axis", 1L), OnnxGraphBuilder.Attr("keepdims", 1L));
            string pooled = g.Node("GatherND", [h3, last], null, OnnxGraphBuilder.Attr("batch_dims", 1L));
            string w = g.Initializer(head.Tensors[0].Name, new ReadOnlyMemory<float>(head.Parameters, 0, k * d), k, d);
            string b = g.Initializer(head.Tensors[1].Name, new ReadOnlyMemory<float>(head.Parameters, k * d, k), k);
            g.Output(g.Node("Gemm", [pooled, w, b], null, OnnxGraphBuilder.Attr("transB", 1L)), OnnxNames.Logits, OnnxDataType.Float, "batch", k);
        }

        public void Save(string path, long threshold)
        {
            var meta = new Dictionary<string, string>
            {
                ["rlhf.family"] = c.Family.ToString(),
                ["rlhf.vocab_size"] = c.VocabSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["rlhf.context_length"] = c.ContextLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
            };
            g.Save(path, threshold, meta);
        }

        private string Block(int l, string x)
        {
            var ly = model.Layout.Layers[l];
            int H = c.HeadCount, KV = c.KvHeadCount, hd = c.HeadDim, G = H / KV;
            string prefix = c.Family == ModelFamily.Gpt2 ? $"transformer.h.{l}." : $"model.layers.{l}.";
            string h = Norm(x, ly.Norm1Weight, ly.Norm1Bias, prefix + (c.Family == ModelFamily.Gpt2 ? "ln_1" : "input_layernorm") + ".weight");
            var qkv = Project(l, 0, h);
            string q, k, v;
            if (qkv.Length == 1)
            {
                var parts = g.Node("Split", [qkv[0], g.ConstInt64([H * hd, KV * hd, KV * hd])], 3, OnnxGraphBuilder.Attr("axis", 1L));
                (q, k, v) = (parts[0], parts[1], parts[2]);
            }
            else
            {
                (q, k, v) = (qkv[0], qkv[1], qkv[2]);
            }

            if (cos != null)
            {
                q = Rotate(q, H);
                k = Rotate(k, KV);
            }

            string shape5 = g.Node("Concat", [shapeBT, g.ConstInt64([KV, G, hd])], null, OnnxGraphBuilder.Attr("axis", 0L));
            string shape4 = g.Node("Concat", [shapeBT, g.ConstInt64([KV, hd])], null, OnnxGraphBuilder.Attr("axis", 0L));
            string q5 = g.Node("Transpose", [g.Node("Reshape", [q, shape5])], null, OnnxGraphBuilder.Attr("perm", new long[] { 0, 2, 3, 1, 4 }));
            string k4 = g.Node("Transpose", [g.Node("Reshape", [k, shape4])], null, OnnxGraphBuilder.Attr("perm", new long[] { 0, 2, 1, 3 }));
            string v4 = g.Node("Transpose", [g.Node("Reshape", [v, shape4])], null, OnnxGraphBuilder.Attr("perm", new long[] { 0, 2, 1, 3 }));
            if (withCache)
            {
                string pk = g.Input(OnnxNames.PastKey(l), OnnxDataType.Float, "batch", KV, "past_sequence", hd);
                string pv = g.Input(OnnxNames.PastValue(l), OnnxDataType.Float, "batch", KV, "past_sequence", hd);
                k4 = g.Node("Concat", [pk, k4], null, OnnxGraphBuilder.Attr("axis", 2L));
                v4 = g.Node("Concat", [pv, v4], null, OnnxGraphBuilder.Attr("axis", 2L));
                g.Output(k4, OnnxNames.PresentKey(l), OnnxDataType.Float, "batch", KV, "total_sequence", hd);
                g.Output(v4, OnnxNames.PresentValue(l), OnnxDataType.Float, "batch", KV, "total_sequence", hd);
                k4 = OnnxNames.PresentKey(l);
                v4 = OnnxNames.PresentValue(l);
            }

            // Query heads h = kvHead·G + g share key/value head kvHead: [B,KV,G,T,hd] × [B,KV,1,hd,S] broadcasts.
            string kT = g.Node("Transpose", [g.Node("Unsqueeze", [k4, g.ConstInt64([2])])], null, OnnxGraphBuilder.Attr("perm", new long[] { 0, 1, 2, 4, 3 }));
            string scores = g.Node("Mul", [g.Node("MatMul", [q5, kT]), g.ConstFloat(1f / MathF.Sqrt(hd))]);
            scores = g.Node("Where", [allowed, scores, g.ConstFloat(MaskedScore)]);
            string probs = g.Node("Mul", [g.Node("Softmax", [scores], null, OnnxGraphBuilder.Attr("axis", -1L)), allowedF]);
            string att = g.Node("MatMul", [probs, g.Node("Unsqueeze", [v4, g.ConstInt64([2])])]);
            att = g.Node("Reshape", [g.Node("Transpose", [att], null, OnnxGraphBuilder.Attr("perm", new long[] { 0, 3, 1, 2, 4 })), g.ConstInt64([-1, H * hd])]);
            x = g.Node("Add", [x, Project(l, 1, att)[0]]);
            h = Norm(x, ly.Norm2Weight, ly.Norm2Bias, prefix + (c.Family == ModelFamily.Gpt2 ? "ln_2" : "post_attention_layernorm") + ".weight");
            var up = Project(l, 2, h);
            string act = c.Family == ModelFamily.Gpt2 ? Gelu(up[0]) : g.Node("Mul", [g.Node("Mul", [up[0], g.Node("Sigmoid", [up[0]])]), up[1]]);
            return g.Node("Add", [x, Project(l, 3, act)[0]]);
        }

        /// <summary>x [N, heads·hd] -> rotate_half RoPE with the gathered cos/sin [N,1,hd/2].</summary>
        private string Rotate(string x, int heads)
        {
            int hd = c.HeadDim, half = hd / 2;
            string x3 = g.Node("Reshape", [x, g.ConstInt64([-1, heads, hd])]);
            var parts = g.Node("Split", [x3, g.ConstInt64([half, half])], 2, OnnxGraphBuilder.Attr("axis", 2L));
            string a = parts[0], b = parts[1];
            string ra = g.Node("Sub", [g.Node("Mul", [a, cos!]), g.Node("Mul", [b, sin!])]);
            string rb = g.Node("Add", [g.Node("Mul", [b, cos!]), g.Node("Mul", [a, sin!])]);
            string r = g.Node("Concat", [ra, rb], null, OnnxGraphBuilder.Attr("axis", 2L));
            return g.Node("Reshape", [r, g.ConstInt64([-1, heads * hd])]);
        }

        /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))) in the engine's operation order.</summary>
        private string Gelu(string x)
        {
            const float S = 0.7978845608028654f, C = 0.044715f;
            string t = g.Node("Add", [g.Node("Mul", [g.Node("Mul", [x, x]), g.ConstFloat(S * C)]), g.ConstFloat(S)]);
            t = g.Node("Tanh", [g.Node("Mul", [t, x])]);
            t = g.Node("Mul", [g.Node("Add", [t, g.ConstFloat(1f)]), x]);
            return g.Node("Mul", [t, g.ConstFloat(0.5f)]);
        }

        private string Norm(string x, int weight, int bias, string weightName)
        {
            int d = c.ModelDim;
            var p = model.Parameters;
            string w = g.Initializer(weightName, new ReadOnlyMemory<float>(p, weight, d), d);
            if (bias >= 0)
            {
                string b = g.Initializer(weightName[..^".weight".Length] + ".bias", new ReadOnlyMemory<float>(p, bias, d), d);
                return g.Node("LayerNormalization", [x, w, b], null, OnnxGraphBuilder.Attr("axis", -1L), OnnxGraphBuilder.Attr("epsilon", c.NormEps));
            }

            string ms = g.Node("ReduceMean", [g.Node("Mul", [x, x])], null, OnnxGraphBuilder.Attr("axes", new long[] { -1 }), OnnxGraphBuilder.Attr("keepdims", 1L));
            string rstd = g.Node("Div", [g.ConstFloat(1f), g.Node("Sqrt", [g.Node("Add", [ms, g.ConstFloat(c.NormEps)])])]);
            return g.Node("Mul", [g.Node("Mul", [x, rstd]), w]);
        }

        /// <summary>x [N, in] -> one output [N, out_p] per upstream module of group <paramref name="group"/>, LoRA deltas added.</summary>
        private string[] Project(int l, int group, string x)
        {
            var grp = LoraAdapter.Group(model.Layout.Layers[l], group);
            var p = model.Parameters;
            var result = new string[grp.Parts.Length];
            for (int i = 0; i < grp.Parts.Length; i++)
            {
                var part = grp.Parts[i];
                string y;
                if (grp.Conv1D)
                {
                    string w = g.Initializer(part.ModuleName + ".weight", new ReadOnlyMemory<float>(p, grp.WeightOffset, grp.In * grp.Out), grp.In, grp.Out);
                    string b = g.Initializer(part.ModuleName + ".bias", new ReadOnlyMemory<float>(p, grp.BiasOffset, grp.Out), grp.Out);
                    y = g.Node("Gemm", [x, w, b]);
                }
                else
                {
                    string w = g.Initializer(part.ModuleName + ".weight", new ReadOnlyMemory<float>(p, grp.WeightOffset + part.ColumnOffset * grp.In, part.Out * grp.In), part.Out, grp.In);
                    y = g.Node("Gemm", [x, w], null, OnnxGraphBuilder.Attr("transB", 1L));
                }

                int s = lora?.SlotIndex(l, group, i) ?? -1;
                if (s >= 0)
                {
                    var slot = lora!.Slots[s];
                    string a = $"base_model.model.{slot.ModuleName}.lora_A.weight", bName = $"base_model.model.{slot.ModuleName}.lora_B.weight";
                    string xa = g.Node("Gemm", [x, a], null, OnnxGraphBuilder.Attr("transB", 1L));
                    y = g.Node("Gemm", [xa, bName, y], null, OnnxGraphBuilder.Attr("transB", 1L), OnnxGraphBuilder.Attr("alpha", lora.Scale));
                }

                result[i] = y;
            }

            return result;
        }

        /// <summary>The engine's <see cref="Rope"/> tables: angle = p·θ^(−2i/hd) in fp32.</summary>
        private static (float[] Cos, float[] Sin) RopeTables(int headDim, int context, float theta)
        {
            int half = headDim / 2;
            var cosT = new float[context * half];
            var sinT = new float[context * half];
            for (int i = 0; i < half; i++)
            {
                float invFreq = (float)(1.0 / Math.Pow(theta, (2.0 * i) / headDim));
                for (int p = 0; p < context; p++)
                {
                    float angle = p * invFreq;
                    cosT[p * half + i] = MathF.Cos(angle);
                    sinT[p * half + i] = MathF.Sin(angle);
                }
            }

            return (cosT, sinT);
        }
    }
}
