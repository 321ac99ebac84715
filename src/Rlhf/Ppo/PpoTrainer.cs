using System.Diagnostics;
using Rlhf.IO;
using Rlhf.Kernels.Ppo;
using Rlhf.Kernels.Vocabulary;
using Rlhf.Model;
using Rlhf.Reward;
using Rlhf.Tokenizers;
using KernelAdamW = Rlhf.Kernels.Optim.AdamW;
using KernelClipping = Rlhf.Kernels.Optim.GradientClipping;

namespace Rlhf.Ppo;

/// <summary>
/// PPO for a causal LM against any <see cref="IRewardFunction"/> (TRL's classic PPOTrainer): rollouts → per-token
/// KL-penalised rewards → GAE → clipped PPO epochs with a value head and an entropy bonus. With LoRA the reference
/// is the same base with the adapter switched off (no second copy); with full fine-tuning a frozen copy.
/// Every random choice is derived from (Seed, iteration), so a checkpoint resumes bit for bit.
/// </summary>
public sealed partial class PpoTrainer : IDisposable
{
    private readonly ITokenizer tokenizer;
    private readonly IRewardFunction reward;
    private readonly string[] prompts;
    private readonly int[][] promptIds;
    private readonly IRolloutSampler generator;
    private readonly float[] trainable, trainableGrad, policyM, policyV, headM, headV;
    private readonly int vocab, dim;

    // Per-minibatch work buffers (sized for MiniBatchSize rows; reused every step).
    private float[] logitChunk = [], mbMask = [], hiddenGrad = [], headAll = [], headGrad = [];
    private int[] mbTokens = [];
    private float[] mNewLogp = [], mEntropy = [], mLse = [], mOldLogp = [], mAdv = [], mRet = [], mValues = [], mOldValues = [], mRespMask = [], mGradLogp = [], mGradEnt = [], mGradV = [];
    private int[] mRespTokens = [];
    private readonly ComputeClock compute = new();

    // Read through Policy, Reference and ValueHead, which bring the host copy up to date from a device first.
    private readonly TransformerModel policyModel, referenceModel;
    private readonly ScoreHead valueHead;

    // Where rollout rows end: the tokenizer's EOS and any id of the policy checkpoint's eos_token_id list. Generation
    // samples with these (plus the iteration's settings) and scoring asks them whether a row ended.
    private readonly GenerationOptions rowEnds;

    // The PPO work on a GPU (Options.Device other than "cpu"). Its trained state (weights, value head, AdamW moments)
    // goes up once and stays there across iterations (resident); the host arrays are brought up to date (hostStale
    // cleared) only when read: the public Policy/ValueHead/TrainableParameters, checkpoints, an ONNX rollout sampler, Dispose.
    private readonly Rlhf.Compute.DevicePolicyUpdate? deviceUpdate;
    private bool deviceStateResident, hostStale;

    /// <summary>
    /// Prepares a trainer (no work yet besides encoding the prompts). With <c>options.LoraRank</c> &gt; 0 an adapter is
    /// attached to <paramref name="policy"/> if it has none; with 0 the policy trains fully against
    /// <paramref name="reference"/> (a frozen copy of the policy is made when null).
    /// </summary>
    /// <exception cref="InvalidInputException">A bad option, no reward, no prompts, an empty prompt, a prompt too long
    /// for the context, or a tokenizer whose vocabulary differs from the model's.</exception>
    public PpoTrainer(TransformerModel policy, ITokenizer tokenizer, IRewardFunction? reward, IReadOnlyList<string> prompts, PpoOptions options, TransformerModel? reference = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.reward = reward ?? throw new InvalidInputException("PPO needs a reward (a reward model, a classifier or an IRewardFunction); none was given.");
        if (tokenizer.VocabSize != policy.Config.VocabSize)
            throw new InvalidInputException(TokenizerVocabulary.Mismatch(tokenizer, policy.Config.VocabSize) + ".");
        if (prompts.Count == 0) throw new InvalidInputException("no prompts given.");
        Options = options;
        policyModel = policy;
        this.tokenizer = tokenizer;
        rowEnds = new GenerationOptions(options.MaxNewTokens, EosTokenId: tokenizer.EosId ?? -1, EosTokenIds: policy.Config.EosTokenIds);
        vocab = policy.Config.VocabSize;
        dim = policy.Config.ModelDim;
        this.prompts = new string[prompts.Count];
        promptIds = new int[prompts.Count][];
        for (int i = 0; i < prompts.Count; i++)
        {
            this.prompts[i] = prompts[i] ?? throw new InvalidInputException($"prompt {i} is null.");
            var ids = tokenizer.Encode(prompts[i]);
            if (tokenizer.BosId is int bos) ids = [bos, .. ids];
            if (ids.Length == 0) throw new InvalidInputException($"prompt {i} is empty.");
            if (ids.Length + options.MaxNewTokens > policy.Config.ContextLength)
                throw new InvalidInputException($"prompt {i} has {ids.Length} tokens; with MaxNewTokens {options.MaxNewTokens} it exceeds the context length {policy.Config.ContextLength}.");
            promptIds[i] = ids;
        }

        if (options.LoraRank > 0)
        {
            if (reference != null) throw new InvalidInputException("with LoRA the reference is the policy's own base; do not pass a reference model.");
            if (policy.Adapter is null)
            {
                var targets = options.LoraTargets ?? LoraConfig.Default(policy.Config.Family).TargetModules;
                policy.AttachAdapter(new LoraConfig(options.LoraRank, options.LoraAlpha, targets), Mix(options.Seed, 0, 101));
            }

            referenceModel = policy;
            trainable = policy.Adapter!.Parameters;
            trainableGrad = policy.Adapter.Gradients;
        }
        else
        {
            if (policy.Adapter != null) throw new InvalidInputException("LoraRank is 0 (full fine-tuning) but the policy has an adapter attached.");
            if (reference is null)
            {
                reference = new TransformerModel(policy.Config);
                policy.Parameters.CopyTo(reference.Parameters, 0);
            }
            else if (reference.Config != policy.Config)
            {
                throw new InvalidInputException("the reference model's configuration differs from the policy's.");
            }

            referenceModel = reference;
            trainable = policy.Parameters;
            trainableGrad = policy.Gradients;
        }

        valueHead = ScoreHead.Value(dim);
        valueHead.InitializeRandom(Mix(options.Seed, 0, 102));
        policyM = new float[trainable.Length];
        policyV = new float[trainable.Length];
        headM = new float[valueHead.Parameters.Length];
        headV = new float[valueHead.Parameters.Length];
        Kl = new KlController(options.InitialKlCoef, options.AdaptiveKl, options.TargetKl, options.KlHorizon);
        if (options.Device != "cpu")
        {
            // Before the rollout executor, so a missing GPU fails fast and leaves nothing open.
            var device = Rlhf.Compute.CausalLmBackends.OpenDevice(options.Device);
            deviceUpdate = new Rlhf.Compute.DevicePolicyUpdate(device, policy, ownsDevice: true, reference: UsesLora ? null : referenceModel);
        }

        generator = RolloutSamplers.Create(options.RolloutBackend, policy, deviceUpdate);
    }

    /// <summary>Releases the rollout executor (an ONNX Runtime session and its exported graph, when used) and the device.</summary>
    /// <remarks>On a device the trained state is copied back to the host objects first (<see cref="Policy"/>, <see cref="ValueHead"/>).</remarks>
    public void Dispose()
    {
        try
        {
            SyncHost();
        }
        finally
        {
            generator.Dispose();
            deviceUpdate?.Dispose();
        }
    }

    public PpoOptions Options { get; }

    /// <summary>The policy (its host copy, brought up to date from the device first when the state lives there).</summary>
    public TransformerModel Policy
    {
        get
        {
            SyncHost();
            return policyModel;
        }
    }

    /// <summary>The frozen reference: <see cref="Policy"/> itself under LoRA (run with the adapter off), else a separate model.</summary>
    public TransformerModel Reference
    {
        get
        {
            SyncHost();
            return referenceModel;
        }
    }

    /// <summary>The value head (its host copy, brought up to date from the device first when the state lives there).</summary>
    public ScoreHead ValueHead
    {
        get
        {
            SyncHost();
            return valueHead;
        }
    }

    public KlController Kl { get; }

    public RunningMoments ScoreMoments { get; } = new();

    /// <summary>Iterations completed (also the data and RNG position).</summary>
    public int Iteration { get; private set; }

    /// <summary>AdamW steps taken.</summary>
    public int OptimizerSteps { get; private set; }

    /// <summary>The trained weights: the adapter's flat buffer under LoRA, else the policy's parameters (host copy, brought up to date first).</summary>
    public ReadOnlySpan<float> TrainableParameters
    {
        get
        {
            SyncHost();
            return trainable;
        }
    }

    // torch.finfo(torch.float32).eps, which TRL adds to the running std.
    private const double FloatEpsilon = 1.1920928955078125e-07;

    private bool UsesLora => Options.LoraRank > 0;

    /// <summary>One full iteration: rollouts, rewards, advantages, PPO epochs, KL controller update.</summary>
    public PpoMetrics Step()
    {
        var total = Stopwatch.StartNew();
        compute.Reset();
        var sw = Stopwatch.StartNew();
        var rollout = Generate();
        double genS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        // On a device the rollout's log-probs, values and advantages stay there (the host rollout keeps only the
        // tokens, masks and scores); the minibatches gather their rows on the device and only metrics come back.
        var device = deviceUpdate;
        if (device != null) RolloutPassOnDevice(device, rollout);
        else ComputeLogProbsAndValues(rollout);
        double refS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        ScoreResponses(rollout);
        double scoreS = sw.Elapsed.TotalSeconds;
        sw.Restart();
        float beta = Kl.Value;
        double meanKl, explained = 0;
        if (device != null) (meanKl, explained) = AdvantagesOnDevice(device, rollout);
        else meanKl = ComputeAdvantages(rollout);
        var upd = Update(rollout, device != null);
        Kl.Update(meanKl, rollout.Batch);
        double updS = sw.Elapsed.TotalSeconds;
        double totalS = total.Elapsed.TotalSeconds;
        Iteration++;
        double raw = 0, raw2 = 0, len = 0;
        for (int b = 0; b < rollout.Batch; b++)
        {
            raw += rollout.RawScores[b];
            len += rollout.Lengths[b];
        }

        raw /= rollout.Batch;
        for (int b = 0; b < rollout.Batch; b++) raw2 += (rollout.RawScores[b] - raw) * (rollout.RawScores[b] - raw);
        double tokens = 0;
        for (int i = 0; i < rollout.Mask.Length; i++) tokens += rollout.Mask[i];
        return upd with
        {
            Iteration = Iteration,
            MeanScore = raw,
            StdScore = rollout.Batch > 1 ? Math.Sqrt(raw2 / (rollout.Batch - 1)) : 0,
            MeanKl = meanKl,
            KlCoef = beta,
            ExplainedVariance = device != null ? explained : ExplainedVariance(rollout),
            MeanResponseLength = len / rollout.Batch,
            TokensPerSecond = tokens * (1 + Options.PpoEpochs) / totalS,
            GenerationSeconds = genS,
            ReferenceSeconds = refS,
            ScoringSeconds = scoreS,
            UpdateSeconds = updS,
            OrchestrationSeconds = Math.Max(0, totalS - compute.Seconds),
            IterationSeconds = totalS,
        };
    }

    /// <summary>Samples one batch of responses for the prompts at this iteration's data position.</summary>
    public PpoRollout Generate()
    {
        int batch = Options.BatchSize;
        var chosen = new int[batch][];
        var text = new string[batch];
        for (int b = 0; b < batch; b++)
        {
            int idx = PromptIndex((long)Iteration * batch + b);
            chosen[b] = promptIds[idx];
            text[b] = prompts[idx];
        }

        GenerationResult result;
        // The engine sampler decodes from the device's weights (uploaded once, then resident); ONNX reads the host's.
        if (deviceUpdate != null && Options.RolloutBackend == RolloutBackend.Engine) UploadDeviceState();
        else SyncHost();
        // Rows end as rowEnds says; the mask is 0 after.
        var sampling = rowEnds with
        {
            MaxNewTokens = Options.MaxNewTokens, Temperature = Options.Temperature, TopK = Options.TopK, TopP = Options.TopP,
            Seed = Mix(Options.Seed, Iteration, 1),
            PadTokenId = Math.Max(0, rowEnds.EosTokenId), UseAdapter = true,
        };
        using (compute.Measure())
        {
            result = generator.Generate(chosen, sampling);
        }

        int p = result.PromptLength, r = result.MaxNewTokens;
        var rollout = new PpoRollout(batch, p, r);
        var (tokens, mask, _) = result.Concatenate();
        tokens.CopyTo(rollout.Tokens, 0);
        mask.CopyTo(rollout.Mask, 0);
        result.Tokens.CopyTo(rollout.ResponseTokens, 0);
        result.Mask.CopyTo(rollout.ResponseMask, 0);
        result.Lengths.CopyTo(rollout.Lengths, 0);
        for (int b = 0; b < batch; b++)
        {
            rollout.Prompts[b] = text[b];
            rollout.Responses[b] = tokenizer.Decode(result.TextTokens(b, sampling));
        }

        return rollout;
    }

    /// <summary>Scores the decoded responses, then applies the missing-EOS penalty, score scaling and clipping.</summary>
    public void ScoreResponses(PpoRollout rollout)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        using (compute.Measure()) reward.Score(rollout.Prompts, rollout.Responses, rollout.RawScores);
        for (int b = 0; b < rollout.Batch; b++)
        {
            float s = rollout.RawScores[b];
            if (!float.IsFinite(s)) throw new InvalidOperationException($"the reward function returned {s} for row {b}.");
            int len = rollout.Lengths[b];
            bool endedWithEos = len > 0 && rowEnds.IsEos(rollout.ResponseTokens[b * rollout.ResponseLength + len - 1]);
            if (len == rollout.ResponseLength && !endedWithEos) s -= Options.MissingEosPenalty;
            rollout.Scores[b] = s;
        }

        if (Options.ScoreScaling)
        {
            ScoreMoments.Update(rollout.Scores);
            double factor = ScoreMoments.Std + FloatEpsilon;
            for (int b = 0; b < rollout.Batch; b++)
            {
                double s = rollout.Scores[b];
                rollout.Scores[b] = (float)(Options.ScoreNormalization ? (s - ScoreMoments.Mean) / factor : s / factor);
            }
        }

        if (Options.ScoreClip > 0)
        {
            for (int b = 0; b < rollout.Batch; b++) rollout.Scores[b] = Math.Clamp(rollout.Scores[b], -Options.ScoreClip, Options.ScoreClip);
        }
    }

    /// <summary>
    /// Fills OldLogProbs, Values (policy forward, adapter on) and ReferenceLogProbs (reference forward) of the
    /// rollout, minibatch by minibatch. The reference runs first: under LoRA both share one set of activations.
    /// </summary>
    public void ComputeLogProbsAndValues(PpoRollout rollout)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        int mb = Options.MiniBatchSize, r = rollout.ResponseLength, s = rollout.SequenceLength;
        EnsureBuffers(mb, rollout);
        UploadDeviceState();
        for (int start = 0; start < rollout.Batch; start += mb)
        {
            int k = Math.Min(mb, rollout.Batch - start);
            var tok = rollout.Tokens.AsSpan(start * s, k * s);
            var msk = rollout.Mask.AsSpan(start * s, k * s);
            var respTok = rollout.ResponseTokens.AsSpan(start * r, k * r);
            if (deviceUpdate != null)
            {
                using var measured = compute.Measure();
                deviceUpdate.LogProbsAndValues(tok, msk, respTok, k, s, rollout.PromptLength, Options.Temperature,
                    rollout.ReferenceLogProbs.AsSpan(start * r, k * r), rollout.OldLogProbs.AsSpan(start * r, k * r), rollout.Values.AsSpan(start * r, k * r));
                continue;
            }

            using (compute.Measure()) referenceModel.Forward(tok, msk, k, s, computeLogits: false, useAdapter: false);
            ResponseLogProbs(referenceModel, rollout, k, respTok, rollout.ReferenceLogProbs.AsSpan(start * r, k * r), default);
            using (compute.Measure()) policyModel.Forward(tok, msk, k, s, computeLogits: false, useAdapter: true);
            ResponseLogProbs(policyModel, rollout, k, respTok, rollout.OldLogProbs.AsSpan(start * r, k * r), default);
            ResponseValues(rollout, msk, k, rollout.Values.AsSpan(start * r, k * r));
        }

        // Masked positions never reach a loss; zero them so stored rollouts are clean.
        for (int i = 0; i < rollout.ResponseMask.Length; i++)
        {
            if (rollout.ResponseMask[i] != 0f) continue;
            rollout.OldLogProbs[i] = 0f;
            rollout.ReferenceLogProbs[i] = 0f;
            rollout.Values[i] = 0f;
        }
    }

    /// <summary>
    /// KL per token (k1 or k3 from old and reference log-probs), rewards = −β·KL + score at the last token, GAE,
    /// returns = advantages + values, then whitened advantages. Returns the mean over rows of Σ_t k1 (TRL objective/kl).
    /// </summary>
    /// <remarks>This is the host computation (also with a device, for callers that hold a host rollout); <see cref="Step"/>
    /// on a device computes the same on the device's copy of the rollout.</remarks>
    public double ComputeAdvantages(PpoRollout rollout)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        int b = rollout.Batch, r = rollout.ResponseLength;
        using (compute.Measure())
        {
            if (Options.KlEstimator == KlEstimator.K3) KullbackLeibler.K3(rollout.OldLogProbs, rollout.ReferenceLogProbs, rollout.Kl);
            else KullbackLeibler.K1(rollout.OldLogProbs, rollout.ReferenceLogProbs, rollout.Kl);
            PpoRewards.Compute(rollout.Kl, rollout.Scores, rollout.ResponseMask, rollout.Rewards, b, r, Kl.Value);
            Gae.Compute(rollout.Rewards, rollout.Values, rollout.ResponseMask, rollout.Advantages, rollout.Returns, b, r, Options.Gamma, Options.Lambda);
            MaskedWhitening.Whiten(rollout.Advantages, rollout.ResponseMask, rollout.Advantages);
        }

        double sum = 0;
        for (int i = 0; i < b * r; i++)
        {
            if (rollout.ResponseMask[i] != 0f) sum += rollout.OldLogProbs[i] - rollout.ReferenceLogProbs[i];
        }

        return sum / b;
    }

    /// <summary>
    /// PpoEpochs passes over the rollout in minibatches (a fresh permutation per epoch from (Seed, iteration, epoch)),
    /// one AdamW step each (a minibatch whose mean ratio passes RatioThreshold steps with zero gradients and is counted in
    /// SkippedMinibatches); stops early when enabled and a step's approximate KL passes 1.5·EarlyStopKl.
    /// </summary>
    public PpoMetrics Update(PpoRollout rollout)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        return Update(rollout, onDevice: false);
    }

    /// <summary><see cref="Update"/>; with <paramref name="onDevice"/> the per-token inputs come from the device's rollout (<see cref="AdvantagesOnDevice"/>).</summary>
    private PpoMetrics Update(PpoRollout rollout, bool onDevice)
    {
        int batch = rollout.Batch, mb = Options.MiniBatchSize;
        EnsureBuffers(mb, rollout);
        var order = new int[batch];
        double pg = 0, vf = 0, ent = 0, clip = 0, akl = 0, vclip = 0, gn = 0;
        int steps = 0, skipped = 0;
        bool stopped = false;
        UploadDeviceState();
        for (int epoch = 0; epoch < Options.PpoEpochs && !stopped; epoch++)
        {
            Permutation(order, Mix(Options.Seed, Iteration, 2 + (ulong)epoch));
            for (int start = 0; start < batch && !stopped; start += mb)
            {
                int k = Math.Min(mb, batch - start);
                var st = onDevice ? TrainRolloutMinibatchOnDevice(deviceUpdate!, rollout, order.AsSpan(start, k)) : TrainMinibatch(rollout, order.AsSpan(start, k));
                pg += st.PolicyLoss;
                vf += st.ValueLoss;
                ent += st.Entropy;
                clip += st.ClipFraction;
                akl += st.ApproxKl;
                vclip += st.ValueClipFraction;
                gn += st.GradNorm;
                steps++;
                skipped += st.SkippedMinibatches;
                if (Options.EarlyStopping && st.ApproxKl > 1.5 * Options.EarlyStopKl) stopped = true;
            }
        }

        return new PpoMetrics
        {
            PolicyLoss = pg / steps, ValueLoss = vf / steps, Entropy = ent / steps, ClipFraction = clip / steps,
            ApproxKl = akl / steps, ValueClipFraction = vclip / steps, GradNorm = gn / steps, MinibatchSteps = steps, SkippedMinibatches = skipped,
            EarlyStopped = stopped,
        };
    }

    /// <summary>Loss = policy loss + c1·value loss − c2·entropy on the given rollout rows, backward, clip, one AdamW step
    /// (with zero gradients, no backward, when the rows' mean ratio exceeds <see cref="PpoOptions.RatioThreshold"/>).</summary>
    public PpoMetrics TrainMinibatch(PpoRollout rollout, ReadOnlySpan<int> rows)
    {
        ArgumentNullException.ThrowIfNull(rollout);
        int k = rows.Length, r = rollout.ResponseLength, s = rollout.SequenceLength, p = rollout.PromptLength;
        if (k == 0 || k > Options.MiniBatchSize) throw new ArgumentOutOfRangeException(nameof(rows), k, $"needs 1..{Options.MiniBatchSize} rows.");
        EnsureBuffers(Options.MiniBatchSize, rollout);
        int kr = k * r, ks = k * s;
        CopyHostRows(rollout, rows);
        for (int i = 0; i < k; i++)
        {
            int row = rows[i];
            rollout.OldLogProbs.AsSpan(row * r, r).CopyTo(mOldLogp.AsSpan(i * r));
            rollout.Values.AsSpan(row * r, r).CopyTo(mOldValues.AsSpan(i * r));
            rollout.Advantages.AsSpan(row * r, r).CopyTo(mAdv.AsSpan(i * r));
            rollout.Returns.AsSpan(row * r, r).CopyTo(mRet.AsSpan(i * r));
        }

        var tokens = mbTokens.AsSpan(0, ks);
        var mask = mbMask.AsSpan(0, ks);
        var respTok = mRespTokens.AsSpan(0, kr);
        var respMask = mRespMask.AsSpan(0, kr);
        if (deviceUpdate != null) return TrainMinibatchOnDevice(deviceUpdate, k, s, p);
        // Only the trained buffer: under LoRA the engine's base-gradient buffer is never written, so its pages stay untouched.
        Array.Clear(trainableGrad);
        Array.Clear(valueHead.Gradients);
        using (compute.Measure()) policyModel.Forward(tokens, mask, k, s, computeLogits: false, useAdapter: true);
        var newLogp = mNewLogp.AsSpan(0, kr);
        var entropy = mEntropy.AsSpan(0, kr);
        var lse = mLse.AsSpan(0, kr);
        float t = Options.Temperature;
        bool keepLogits = KeepsMinibatchLogits(k, r);
        if (keepLogits)
        {
            using var measured = compute.Measure();
            policyModel.ComputeLogits(p - 1, r, k, s, logitChunk.AsSpan(0, k * r * vocab));
        }

        for (int i = 0; i < k; i++)
        {
            using var measured = compute.Measure();
            var chunk = RowLogits(keepLogits, i, r);
            if (!keepLogits) policyModel.ComputeLogits(i * s + p - 1, r, chunk);
            TokenStatistics.Compute(chunk, respTok.Slice(i * r, r), vocab, t, newLogp.Slice(i * r, r), entropy.Slice(i * r, r), lse.Slice(i * r, r));
        }

        var values = mValues.AsSpan(0, kr);
        ResponseValues(rollout, mask, k, values);
        var gradLogp = mGradLogp.AsSpan(0, kr);
        var gradV = mGradV.AsSpan(0, kr);
        var gradEnt = mGradEnt.AsSpan(0, kr);
        PolicyLossStats pl;
        ValueLossStats vl;
        using (compute.Measure())
        {
            // One count of the minibatch's mask serves both losses.
            int validTokens = MaskCount.Count(respMask);
            pl = PolicyLoss.Compute(newLogp, mOldLogp.AsSpan(0, kr), mAdv.AsSpan(0, kr), respMask, gradLogp, k, r, Options.ClipRange,
                validCount: validTokens);
            vl = ValueLoss.Compute(values, mOldValues.AsSpan(0, kr), mRet.AsSpan(0, kr), respMask, gradV, k, r, Options.ValueClipRange,
                Options.ValueCoef, validTokens);
        }

        double meanEnt = EntropyBonus.Gradient(entropy, respMask, pl.ValidCount, Options.EntropyCoef, gradEnt);
        // TRL's ratio_threshold: a minibatch this far from the rollout's policy would only make a loss spike, so its
        // whole loss is dropped (no backward; the gradients stay as cleared above) but the AdamW step still runs, as
        // TRL's optimizer.step() does on a zeroed loss (see PpoOptions.RatioThreshold).
        bool skipped = pl.MeanRatio > Options.RatioThreshold;
        if (!skipped) Backward(k, s, p, keepLogits, mask, respTok, lse, entropy, gradLogp, gradEnt, gradV);
        float norm;
        OptimizerSteps++;
        using (compute.Measure())
        {
            ReadOnlySpan<Memory<float>> grads = [trainableGrad, valueHead.Gradients];
            if (Options.MaxGradNorm > 0) norm = KernelClipping.ClipByGlobalNorm(grads, Options.MaxGradNorm);
            else norm = KernelClipping.GlobalNorm(grads);
            KernelAdamW.Step(trainable, trainableGrad, policyM, policyV, OptimizerSteps, Options.LearningRate, Options.AdamBeta1, Options.AdamBeta2, Options.AdamEpsilon, Options.WeightDecay);
            KernelAdamW.Step(valueHead.Parameters, valueHead.Gradients, headM, headV, OptimizerSteps, Options.LearningRate, Options.AdamBeta1, Options.AdamBeta2, Options.AdamEpsilon, Options.WeightDecay);
        }

        return new PpoMetrics
        {
            PolicyLoss = skipped ? 0 : pl.Loss, ValueLoss = skipped ? 0 : vl.Loss, Entropy = meanEnt, ClipFraction = pl.ClipFraction, ApproxKl = pl.ApproxKl,
            ValueClipFraction = vl.ClipFraction, GradNorm = norm, MinibatchSteps = 1, SkippedMinibatches = skipped ? 1 : 0,
        };
    }

    /// <summary>
    /// The backward of <see cref="TrainMinibatch"/> from the token-statistic and value gradients of its loss: through the
    /// logits (kept or recomputed per row) and the value head into the policy's trained weights and the head's gradients.
    /// </summary>
    private void Backward(int k, int s, int p, bool keepLogits, ReadOnlySpan<float> mask, ReadOnlySpan<int> respTok, ReadOnlySpan<float> lse,
        ReadOnlySpan<float> entropy, ReadOnlySpan<float> gradLogp, ReadOnlySpan<float> gradEnt, ReadOnlySpan<float> gradV)
    {
        int r = s - p, ks = k * s;
        for (int i = 0; i < k; i++)
        {
            using var measured = compute.Measure();
            var chunk = RowLogits(keepLogits, i, r);
            if (!keepLogits) policyModel.ComputeLogits(i * s + p - 1, r, chunk);
            TokenStatistics.Backward(chunk, respTok.Slice(i * r, r), vocab, Options.Temperature, lse.Slice(i * r, r), entropy.Slice(i * r, r), gradLogp.Slice(i * r, r), gradEnt.Slice(i * r, r));
            if (!keepLogits) policyModel.AccumulateLogitsGradient(i * s + p - 1, r, chunk);
        }

        if (keepLogits)
        {
            using var measured = compute.Measure();
            policyModel.AccumulateLogitsGradient(p - 1, r, k, s, logitChunk.AsSpan(0, k * r * vocab));
        }

        var dScores = headGrad.AsSpan(0, ks);
        dScores.Clear();
        for (int i = 0; i < k; i++) gradV.Slice(i * r, r).CopyTo(dScores.Slice(i * s + p - 1, r));
        var dHidden = hiddenGrad.AsSpan(0, ks * dim);
        dHidden.Clear();
        using (compute.Measure())
        {
            valueHead.Backward(dScores, policyModel.FinalHidden, mask, k, s, dHidden);
            policyModel.Backward(default, dHidden);
        }
    }

    /// <summary>The tokens, masks and response tokens/mask of <paramref name="rows"/> into the minibatch buffers (rows checked).</summary>
    private void CopyHostRows(PpoRollout rollout, ReadOnlySpan<int> rows)
    {
        int r = rollout.ResponseLength, s = rollout.SequenceLength;
        for (int i = 0; i < rows.Length; i++)
        {
            int row = rows[i];
            if ((uint)row >= (uint)rollout.Batch) throw new ArgumentOutOfRangeException(nameof(rows), row, $"row index {row} at {i} is outside [0, {rollout.Batch}).");
            rollout.Tokens.AsSpan(row * s, s).CopyTo(mbTokens.AsSpan(i * s));
            rollout.Mask.AsSpan(row * s, s).CopyTo(mbMask.AsSpan(i * s));
            rollout.ResponseTokens.AsSpan(row * r, r).CopyTo(mRespTokens.AsSpan(i * r));
            rollout.ResponseMask.AsSpan(row * r, r).CopyTo(mRespMask.AsSpan(i * r));
        }
    }

    private Rlhf.Compute.PolicyUpdateSettings DeviceSettings()
    {
        var o = Options;
        return new Rlhf.Compute.PolicyUpdateSettings(o.Temperature, o.ClipRange, o.ValueClipRange, o.ValueCoef, o.EntropyCoef, o.MaxGradNorm,
            o.LearningRate, o.AdamBeta1, o.AdamBeta2, o.AdamEpsilon, o.WeightDecay, o.RatioThreshold);
    }

    /// <summary>The rollout pass of <see cref="Step"/> on a device: log-probs and values into the device's rollout, nothing back.</summary>
    private void RolloutPassOnDevice(Rlhf.Compute.DevicePolicyUpdate update, PpoRollout rollout)
    {
        int mb = Options.MiniBatchSize, r = rollout.ResponseLength, s = rollout.SequenceLength;
        UploadDeviceState();
        using var measured = compute.Measure();
        update.BeginRollout(rollout.Batch, r);
        for (int start = 0; start < rollout.Batch; start += mb)
        {
            int k = Math.Min(mb, rollout.Batch - start);
            update.RolloutLogProbsAndValues(rollout.Tokens.AsSpan(start * s, k * s), rollout.Mask.AsSpan(start * s, k * s),
                rollout.ResponseTokens.AsSpan(start * r, k * r), start, k, s, rollout.PromptLength, Options.Temperature);
        }
    }

    /// <summary><see cref="ComputeAdvantages"/> on the device's rollout (after <see cref="ScoreResponses"/>): returns the mean KL and the explained variance.</summary>
    private (double MeanKl, double ExplainedVariance) AdvantagesOnDevice(Rlhf.Compute.DevicePolicyUpdate update, PpoRollout rollout)
    {
        using var measured = compute.Measure();
        var a = update.RolloutAdvantages(rollout.ResponseMask, rollout.Scores, Options.KlEstimator == KlEstimator.K3, Kl.Value, Options.Gamma, Options.Lambda);
        return (a.MeanKl, a.ExplainedVariance);
    }

    /// <summary><see cref="TrainMinibatch"/> on rows of the device's rollout: only the rows' host tokens and masks go up.</summary>
    private PpoMetrics TrainRolloutMinibatchOnDevice(Rlhf.Compute.DevicePolicyUpdate update, PpoRollout rollout, ReadOnlySpan<int> rows)
    {
        int k = rows.Length, r = rollout.ResponseLength, s = rollout.SequenceLength, kr = k * r;
        EnsureBuffers(Options.MiniBatchSize, rollout);
        CopyHostRows(rollout, rows);
        UploadDeviceState();
        using var measured = compute.Measure();
        OptimizerSteps++;
        var st = update.TrainRolloutMinibatch(mbTokens.AsSpan(0, k * s), mbMask.AsSpan(0, k * s), mRespTokens.AsSpan(0, kr), mRespMask.AsSpan(0, kr),
            rows, s, rollout.PromptLength, OptimizerSteps, DeviceSettings());
        hostStale = true;
        return Metrics(st);
    }

    private static PpoMetrics Metrics(in Rlhf.Compute.PolicyUpdateStats st) => new()
    {
        PolicyLoss = st.PolicyLoss, ValueLoss = st.ValueLoss, Entropy = st.Entropy, ClipFraction = st.ClipFraction, ApproxKl = st.ApproxKl,
        ValueClipFraction = st.ValueClipFraction, GradNorm = st.GradNorm, MinibatchSteps = 1, SkippedMinibatches = st.Skipped ? 1 : 0,
    };

    private PpoMetrics TrainMinibatchOnDevice(Rlhf.Compute.DevicePolicyUpdate update, int k, int s, int p)
    {
        int kr = k * (s - p);
        UploadDeviceState();
        using var measured = compute.Measure();
        OptimizerSteps++;
        var st = update.TrainMinibatch(mbTokens.AsSpan(0, k * s), mbMask.AsSpan(0, k * s), mRespTokens.AsSpan(0, kr), mRespMask.AsSpan(0, kr),
            mOldLogp.AsSpan(0, kr), mOldValues.AsSpan(0, kr), mAdv.AsSpan(0, kr), mRet.AsSpan(0, kr), k, s, p, OptimizerSteps, DeviceSettings());
        hostStale = true;
        return Metrics(st);
    }

    /// <summary>Puts the host's state on the device unless it is there already (from construction, a checkpoint load).</summary>
    private void UploadDeviceState()
    {
        if (deviceUpdate is null || deviceStateResident) return;
        deviceUpdate.UploadState(trainable, valueHead.Parameters, policyM, policyV, headM, headV);
        deviceStateResident = true;
    }

    /// <summary>Brings the host arrays up to date with the device's state after device steps (the state stays resident there).</summary>
    private void SyncHost()
    {
        if (deviceUpdate is null || !hostStale) return;
        deviceUpdate.DownloadState(trainable, valueHead.Parameters, policyM, policyV, headM, headV);
        hostStale = false;
        StateDownloads++;
    }

    /// <summary>How many times the device's trained state was copied back to the host (for tests: none between iterations).</summary>
    internal int StateDownloads { get; private set; }

    /// <summary>Total loss of the last statistics: policy + c1·value − c2·entropy, from the iteration's means (minibatches
    /// skipped by <see cref="PpoOptions.RatioThreshold"/> enter them with policy and value loss 0 and their entropy as
    /// measured, so the total is not TRL's 0 for them).</summary>
    public double TotalLoss(PpoMetrics m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return m.PolicyLoss + Options.ValueCoef * m.ValueLoss - Options.EntropyCoef * m.Entropy;
    }

    private void ResponseLogProbs(TransformerModel model, PpoRollout rollout, int k, ReadOnlySpan<int> respTok, Span<float> logp, Span<float> entropy)
    {
        int r = rollout.ResponseLength, s = rollout.SequenceLength, p = rollout.PromptLength;
        var lse = mLse.AsSpan(0, r);
        bool keepLogits = KeepsMinibatchLogits(k, r);
        if (keepLogits)
        {
            using var measured = compute.Measure();
            model.ComputeLogits(p - 1, r, k, s, logitChunk.AsSpan(0, k * r * vocab));
        }

        for (int i = 0; i < k; i++)
        {
            using var measured = compute.Measure();
            var chunk = RowLogits(keepLogits, i, r);
            if (!keepLogits) model.ComputeLogits(i * s + p - 1, r, chunk);
            if (entropy.IsEmpty) TokenStatistics.LogProbs(chunk, respTok.Slice(i * r, r), vocab, Options.Temperature, logp.Slice(i * r, r), lse);
            else TokenStatistics.Compute(chunk, respTok.Slice(i * r, r), vocab, Options.Temperature, logp.Slice(i * r, r), entropy.Slice(i * r, r), lse);
        }
    }

    // Keeping a minibatch's response logits lets one product cover every sequence of the minibatch and saves
    // recomputing them in the backward; past this size they are computed per sequence and recomputed for the
    // backward instead, so memory stays bounded for long responses.
    internal long KeptLogitsLimit { get; init; } = 64L << 20; // floats: 256 MiB

    private bool KeepsMinibatchLogits(int rows, int responseLength) => (long)rows * responseLength * vocab <= KeptLogitsLimit;

    private Span<float> RowLogits(bool kept, int row, int responseLength) =>
        logitChunk.AsSpan(kept ? row * responseLength * vocab : 0, responseLength * vocab);

    private void ResponseValues(PpoRollout rollout, ReadOnlySpan<float> mask, int k, Span<float> values)
    {
        int r = rollout.ResponseLength, s = rollout.SequenceLength, p = rollout.PromptLength;
        var all = headAll.AsSpan(0, k * s);
        using (compute.Measure()) valueHead.Forward(policyModel.FinalHidden, mask, k, s, all);
        for (int i = 0; i < k; i++) all.Slice(i * s + p - 1, r).CopyTo(values.Slice(i * r, r));
    }

    private void EnsureBuffers(int mb, PpoRollout rollout)
    {
        int r = rollout.ResponseLength, s = rollout.SequenceLength;
        long logits = KeepsMinibatchLogits(mb, r) ? (long)mb * r * vocab : (long)r * vocab;
        if (logitChunk.Length < logits) logitChunk = new float[logits];
        if (mbTokens.Length < mb * s)
        {
            mbTokens = new int[mb * s];
            mbMask = new float[mb * s];
            headAll = new float[mb * s];
            headGrad = new float[mb * s];
            hiddenGrad = new float[mb * s * dim];
        }

        if (mNewLogp.Length < mb * r)
        {
            int n = mb * r;
            mNewLogp = new float[n];
            mEntropy = new float[n];
            mLse = new float[n];
            mOldLogp = new float[n];
            mAdv = new float[n];
            mRet = new float[n];
            mValues = new float[n];
            mOldValues = new float[n];
            mRespMask = new float[n];
            mGradLogp = new float[n];
            mGradEnt = new float[n];
            mGradV = new float[n];
            mRespTokens = new int[n];
        }
    }

    private static double ExplainedVariance(PpoRollout rollout)
    {
        int n = rollout.Returns.Length;
        var diff = new float[n];
        for (int i = 0; i < n; i++) diff[i] = rollout.Returns[i] - rollout.Values[i];
        var vr = MaskedWhitening.Moments(rollout.Returns, rollout.ResponseMask);
        if (vr.Count < 2 || vr.Variance == 0) return 0;
        var vd = MaskedWhitening.Moments(diff, rollout.ResponseMask);
        return 1.0 - vd.Variance / vr.Variance;
    }

    /// <summary>Dataset order: a seeded shuffle per pass over the prompts, so position → prompt depends only on the seed.</summary>
    private int PromptIndex(long position)
    {
        int n = prompts.Length;
        long pass = position / n;
        int within = (int)(position % n);
        if (cachedPass != pass)
        {
            cachedOrder ??= new int[n];
            Permutation(cachedOrder, Mix(Options.Seed, (int)pass, 3));
            cachedPass = pass;
        }

        return cachedOrder![within];
    }

    private int[]? cachedOrder;
    private long cachedPass = -1;

    /// <summary>Fisher–Yates over 0..n−1 with xoshiro256**.</summary>
    private static void Permutation(Span<int> order, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        for (int i = 0; i < order.Length; i++) order[i] = i;
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)(rng.NextUInt64() % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
    }

    internal static ulong Mix(ulong seed, int iteration, ulong stream)
    {
        ulong z = seed ^ (0x9E3779B97F4A7C15UL * ((ulong)iteration + 1)) ^ (0xD1B54A32D192ED03UL * (stream + 1));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
