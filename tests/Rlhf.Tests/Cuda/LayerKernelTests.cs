using Rlhf.Kernels.Device;
using Rlhf.Model;

namespace Rlhf.Tests.Cuda;

[NonParallelizable]
public class LayerKernelTests : DeviceTestBase
{
    private TransformerDeviceKernels k = null!;

    protected override void OnDevice() => k = new TransformerDeviceKernels(Device);

    [Test]
    public void LayerNormForwardAndBackwardMatchTheCpuLayer()
    {
        const int n = 130, c = 37; // wider than a CPU-accelerator group (16): the strided row loop
        var x = Random(n * c, 1, 2f);
        var w = Random(c, 2);
        var b = Random(c, 3);
        var dy = Random(n * c, 4);
        float[] y = new float[n * c], mean = new float[n], rstd = new float[n];
        LayerNorm.Forward(x, w, b, y, mean, rstd, n, c, 1e-5f);
        var dx = Random(n * c, 5);
        var dxDev = Up((float[])dx.Clone());
        var dw = Random(c, 6);
        var db = Random(c, 7);
        var dwDev = Up((float[])dw.Clone());
        var dbDev = Up((float[])db.Clone());
        LayerNorm.Backward(dy, x, w, mean, rstd, dx, dw, db, n, c);

        var xd = Up(x);
        var yd = Up(new float[n * c]);
        var md = Up(new float[n]);
        var rd = Up(new float[n]);
        var wd = Up(w);
        k.LayerNormForward(xd, wd, Up(b), yd, md, rd, n, c, 1e-5f);
        k.LayerNormBackward(Up(dy), xd, wd, md, rd, dxDev, dwDev, dbDev, n, c, trainWeights: true);
        AssertClose(Down(yd), y, 1e-5, "y");
        AssertClose(Down(md), mean, 1e-5, "mean");
        AssertClose(Down(rd), rstd, 1e-5, "rstd");
        AssertClose(Down(dxDev), dx, 1e-5, "dx");
        AssertClose(Down(dwDev), dw, 1e-5, "dw");
        AssertClose(Down(dbDev), db, 1e-5, "db");
    }

    [Test]
    public void RmsNormForwardAndBackwardMatchTheCpuLayer()
    {
        const int n = 70, c = 40;
        var x = Random(n * c, 11, 2f);
        var w = Random(c, 12);
        var dy = Random(n * c, 13);
        float[] y = new float[n * c], rstd = new float[n];
        RmsNorm.Forward(x, w, y, rstd, n, c, 1e-6f);
        var dx = Random(n * c, 14);
        var dw = Random(c, 15);
        var dxDev = Up((float[])dx.Clone());
        var dwDev = Up((float[])dw.Clone());
        RmsNorm.Backward(dy, x, w, rstd, dx, dw, n, c);

        var xd = Up(x);
        var wd = Up(w);
        var yd = Up(new float[n * c]);
        var rd = Up(new float[n]);
        k.RmsNormForward(xd, wd, yd, rd, n, c, 1e-6f);
        k.RmsNormBackward(Up(dy), xd, wd, rd, dxDev, dwDev, n, c, trainWeights: true);
        AssertClose(Down(yd), y, 1e-5, "y");
        AssertClose(Down(rd), rstd, 1e-5, "rstd");
        AssertClose(Down(dxDev), dx, 1e-5, "dx");
        AssertClose(Down(dwDev), dw, 1e-5, "dw");
    }

    [Test]
    public void GeluAndSwiGluMatchTheCpuLayers()
    {
        const int n = 4, f = 9;
        var x = Random(n * f, 21, 3f);
        var dy = Random(n * f, 22);
        float[] y = new float[n * f], dx = new float[n * f];
        GeluTanh.Forward(x, y);
        GeluTanh.Backward(x, dy, dx);
        var xd = Up(x);
        var yd = Up(new float[n * f]);
        var dxd = Up(new float[n * f]);
        k.GeluForward(xd, yd);
        k.GeluBackward(xd, Up(dy), dxd);
        AssertClose(Down(yd), y, 1e-5, "gelu y");
        AssertClose(Down(dxd), dx, 1e-5, "gelu dx");

        var gu = Random(n * 2 * f, 23, 3f);
        float[] sy = new float[n * f], dgu = new float[n * 2 * f];
        SwiGlu.Forward(gu, sy, n, f);
        SwiGlu.Backward(gu, dy, dgu, n, f);
        var gud = Up(gu);
        var syd = Up(new float[n * f]);
        var dgud = Up(new float[n * 2 * f]);
        k.SwiGluForward(gud, syd, n, f);
        k.SwiGluBackward(gud, Up(dy), dgud, n, f);
        AssertClose(Down(syd), sy, 1e-5, "swiglu y");
        AssertClose(Down(dgud), dgu, 1e-5, "swiglu dgateup");
    }

    [Test]
    public void ResidualAndBiasOpsMatchScalarSums()
    {
        const int n = 150, o = 5; // more rows than one 64-row chunk of the column sums
        var a = Random(n * o, 31);
        var b = Random(o, 32);
        var c = Random(n * o, 33);
        var ad = Up(a);
        k.Add(ad, Up(c), ad);
        k.AddBias(ad, Up(b), n, o);
        var db0 = Random(o, 34);
        var dbd = Up((float[])db0.Clone());
        k.BiasBackward(Up(c), dbd, n, o);
        var sum = Down(ad);
        var db = Down(dbd);
        for (int i = 0; i < n * o; i++) Assert.That(sum[i], Is.EqualTo(a[i] + c[i] + b[i % o]).Within(1e-6), $"y[{i}]");
        for (int j = 0; j < o; j++)
        {
            double e = db0[j];
            for (int i = 0; i < n; i++) e += c[i * o + j];
            Assert.That(db[j], Is.EqualTo(e).Within(1e-5), $"db[{j}]");
        }
    }

    [Test]
    public void EmbeddingForwardAndBackwardMatchTheCpuLayer()
    {
        const int n = 6, d = 4, vocab = 5, ctx = 7;
        int[] tokens = [3, 1, 3, 0, 4, 3], positions = [0, 1, 2, 0, 0, 1];
        var wte = Random(vocab * d, 41);
        var wpe = Random(ctx * d, 42);
        var dx = Random(n * d, 43);
        var x = new float[n * d];
        Embedding.Forward(tokens, positions, wte, wpe, x, n, d, vocab);
        var dwte = Random(vocab * d, 44);
        var dwpe = Random(ctx * d, 45);
        var dwteDev = Up((float[])dwte.Clone());
        var dwpeDev = Up((float[])dwpe.Clone());
        Embedding.Backward(dx, tokens, positions, dwte, dwpe, n, d);

        var td = Up(tokens);
        var pd = Up(positions);
        var xd = Up(new float[n * d]);
        k.EmbeddingForward(td, pd, Up(wte), Up(wpe), xd, n, d);
        k.EmbeddingBackward(Up(dx), td, pd, dwteDev, dwpeDev, n, d);
        AssertClose(Down(xd), x, 1e-6, "x");
        AssertClose(Down(dwteDev), dwte, 1e-5, "dwte");
        AssertClose(Down(dwpeDev), dwpe, 1e-5, "dwpe");

        // Without positions (Llama) only the token table is read and written.
        var x2 = new float[n * d];
        Embedding.Forward(tokens, positions, wte, default, x2, n, d, vocab);
        k.EmbeddingForward(td, pd, Up(wte), default, xd, n, d);
        AssertClose(Down(xd), x2, 1e-6, "x without positions");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void RopeMatchesTheCpuRotation(bool inverse)
    {
        const int hd = 6, ctx = 9, n = 4, heads = 2, stride = 20, offset = 3;
        var rope = new Rope(hd, ctx, 10000f);
        int[] positions = [0, 8, 3, 5];
        var x = Random(n * stride, 51);
        var expected = (float[])x.Clone();
        rope.Apply(expected, stride, offset, heads, positions, n, inverse);
        int half = hd / 2;
        float[] cos = new float[ctx * half], sin = new float[ctx * half];
        // The table of Rope: identity rotation of unit vectors reads cos/sin back.
        for (int p = 0; p < ctx; p++)
        {
            var unit = new float[hd];
            for (int i = 0; i < half; i++) unit[i] = 1f;
            rope.Apply(unit, hd, 0, 1, [p], 1, inverse: false);
            for (int i = 0; i < half; i++)
            {
                cos[p * half + i] = unit[i];
                sin[p * half + i] = unit[i + half];
            }
        }

        var xd = Up(x);
        k.Rope(xd, Up(positions), Up(cos), Up(sin), n, stride, offset, heads, hd, inverse);
        AssertClose(Down(xd), expected, 1e-6, "x");
    }
}
