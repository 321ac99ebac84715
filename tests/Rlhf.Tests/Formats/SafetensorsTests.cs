using System.Buffers.Binary;
using System.Text;
using Rlhf.Formats;
using static Rlhf.Tests.Formats.FormatTestFiles;

namespace Rlhf.Tests.Formats;

public class SafetensorsTests
{
    [Test]
    public void Write_ProducesSpecByteLayout()
    {
        using var dir = new TempDir();
        var t = new NamedTensors();
        t.Metadata["format"] = "pt";
        t.Add("b", [2], [1f, -2f]);
        t.Add("a", [1, 1], [3.5f]);
        string path = dir.File("x.safetensors");
        Safetensors.Write(path, t);

        // Spec: u64 LE N, N bytes of JSON (metadata first, then tensors sorted by name, data_offsets relative
        // to the data section), space-padded so that 8 + N is a multiple of 8, then little-endian data.
        string json = "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        int padded = (json.Length + 7) / 8 * 8;
        var expected = new byte[8 + padded + 12];
        BinaryPrimitives.WriteUInt64LittleEndian(expected, (ulong)padded);
        Encoding.ASCII.GetBytes(json.PadRight(padded, ' ')).CopyTo(expected, 8);
        F32Bytes(3.5f, 1f, -2f).CopyTo(expected, 8 + padded);

        Assert.That(File.ReadAllBytes(path), Is.EqualTo(expected));
        Assert.That(padded % 8, Is.EqualTo(0));
        Assert.That(padded, Is.GreaterThan(json.Length), "this header needs padding, so the test covers it");
    }

    [Test]
    public void WriteThenRead_RoundTripsShapesValuesAndMetadata()
    {
        using var dir = new TempDir();
        var t = new NamedTensors();
        t.Metadata["note"] = "ünïcode ok";
        t.Add("layer.0.w", [3, 5], Random(15, 1));
        t.Add("scalar", [], [float.NaN]);
        t.Add("empty", [0, 4], []);
        t.Add("bias", [7], Random(7, 2));
        string path = dir.File("m.safetensors");
        Safetensors.Write(path, t);

        var back = Safetensors.Read(path);
        Assert.That(back.Source, Is.EqualTo(path));
        Assert.That(back.Names, Is.EqualTo(new[] { "bias", "empty", "layer.0.w", "scalar" }));
        Assert.That(back.Metadata["note"], Is.EqualTo("ünïcode ok"));
        foreach (var orig in t)
        {
            var r = back[orig.Name];
            Assert.That(r.Shape, Is.EqualTo(orig.Shape), orig.Name);
            Assert.That(r.Data, Is.EqualTo(orig.Data), orig.Name);
        }
    }

    [Test]
    public void Write_OverwritesAtomicallyAndLeavesNoTempFile()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        var t1 = new NamedTensors();
        t1.Add("w", [2], [1f, 2f]);
        Safetensors.Write(path, t1);
        var t2 = new NamedTensors();
        t2.Add("v", [1], [9f]);
        Safetensors.Write(path, t2);

        Assert.That(Directory.GetFiles(dir.Path), Is.EqualTo(new[] { path }));
        var back = Safetensors.Read(path);
        Assert.That(back.Names, Is.EqualTo(new[] { "v" }));
    }

    [Test]
    public void Read_ConvertsF16AndBF16ToFloat()
    {
        using var dir = new TempDir();
        float[] values = [1.5f, -2f, 0.099975586f, float.PositiveInfinity, float.NaN, -0f];
        var f16 = new byte[values.Length * 2];
        var bf16 = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(f16.AsSpan(2 * i), (Half)values[i]);
            // These values are exact in bf16: the top 16 bits of the fp32 pattern.
            ushort b = (ushort)(BitConverter.SingleToUInt32Bits(values[i] == 0.099975586f ? 0.099609375f : values[i]) >> 16);
            BinaryPrimitives.WriteUInt16LittleEndian(bf16.AsSpan(2 * i), b);
        }

        string header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[6],\"data_offsets\":[12,24]}}";
        string path = dir.File("half.safetensors");
        WriteRawSafetensors(path, header, [.. f16, .. bf16]);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.GetInfo("h").DType, Is.EqualTo(SafetensorsDType.F16));
        Assert.That(file.GetInfo("b").DType, Is.EqualTo(SafetensorsDType.BF16));
        var h = new float[6];
        file.CopyTo("h", [2, 3], h);
        Assert.That(h, Is.EqualTo(new[] { 1.5f, -2f, 0.099975586f, float.PositiveInfinity, float.NaN, -0f }));
        Assert.That(BitConverter.SingleToInt32Bits(h[5]), Is.EqualTo(BitConverter.SingleToInt32Bits(-0f)));
        Assert.That(file.ReadFloats("b"), Is.EqualTo(new[] { 1.5f, -2f, 0.099609375f, float.PositiveInfinity, float.NaN, -0f }));
    }

    [Test]
    public void Get_ChecksShapeAndNamesFileAndTensor()
    {
        using var dir = new TempDir();
        string path = dir.File("m.safetensors");
        var t = new NamedTensors();
        t.Add("w", [2, 3], new float[6]);
        Safetensors.Write(path, t);
        var back = Safetensors.Read(path);

        Assert.That(back.Get("w", [2, 3]), Has.Length.EqualTo(6));
        var e = Assert.Throws<CheckpointFormatException>(() => back.Get("w", [3, 2]))!;
        Assert.That(e.Message, Is.EqualTo($"file {path}: tensor w has shape [2,3], expected [3,2]"));
        Assert.That(e.Item, Is.EqualTo("w"));
        var missing = Assert.Throws<CheckpointFormatException>(() => back.Get("nope", [1]))!;
        Assert.That(missing.Message, Is.EqualTo($"file {path}: tensor nope not found"));

        using var file = SafetensorsFile.Open(path);
        var e2 = Assert.Throws<CheckpointFormatException>(() => file.CopyTo("w", [6], new float[6]))!;
        Assert.That(e2.Message, Is.EqualTo($"file {path}: tensor w has shape [2,3], expected [6]"));
    }

    private static CheckpointFormatException ReadError(string header, byte[] data, ulong? lengthOverride = null, string name = "bad.safetensors")
    {
        using var dir = new TempDir();
        string path = dir.File(name);
        WriteRawSafetensors(path, header, data, lengthOverride);
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: "));
        Assert.That(e.FilePath, Is.EqualTo(path));
        return e;
    }

    [Test]
    public void Read_TruncatedFile_NamesFile()
    {
        using var dir = new TempDir();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 0, 0]);
        var e = Assert.Throws<CheckpointFormatException>(() => Safetensors.Read(path))!;
        Assert.That(e.Message, Does.StartWith($"file {path}: truncated"));
    }

    [Test]
    public void Read_HeaderLengthBeyondFile_NamesLength()
    {
        var e = ReadError("{}", [], lengthOverride: 1000);
        Assert.That(e.Message, Does.Contain("header length 1000 is beyond the end of the file (10 bytes)"));
    }

    [Test]
    public void Read_BadJson()
    {
        var e = ReadError("{\"w\":", []);
        Assert.That(e.Message, Does.Contain("not valid JSON"));
    }

    [Test]
    public void Read_UnknownDType_NamesTensorAndValue()
    {
        var e = ReadError("{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.That(e.Message, Does.Contain("tensor ids: unsupported dtype 'I64'"));
        Assert.That(e.Item, Is.EqualTo("ids"));
    }

    [Test]
    public void Read_OffsetsOutOfRange_NamesTensor()
    {
        var e = ReadError("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", new byte[8]);
        Assert.That(e.Message, Does.Contain("tensor w: data_offsets [0,16] out of range of the 8-byte data section"));
    }

    [Test]
    public void Read_OffsetsNotMatchingShape_NamesTensor()
    {
        var e = ReadError("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[8]);
        Assert.That(e.Message, Does.Contain("tensor w: data_offsets [0,8] hold 8 bytes, but shape [3] of F32 needs 12"));
    }

    [Test]
    public void Read_OverlappingOffsets_NamesBothTensors()
    {
        var e = ReadError("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        Assert.That(e.Message, Does.Contain("tensor b: data_offsets [4,12] overlap tensor a [0,8]"));
    }

    [Test]
    public void Read_BytesAfterTheLastTensor_NamesFile() // the reference reader's MetadataIncompleteBuffer; was accepted
    {
        var e = ReadError("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[12]);
        Assert.That(e.Message, Does.Contain("4 bytes after the last tensor: the tensors cover 8 bytes of the 12-byte data section"));
    }

    [Test]
    public void Read_BytesBetweenTensors_NamesTheTensorAfterTheGap() // the reference reader's InvalidOffset; was accepted
    {
        var e = ReadError("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", new byte[12]);
        Assert.That(e.Message, Does.Contain("tensor b: data_offsets [8,12] leave bytes [4,8) of the data section to no tensor"));
        Assert.That(e.Item, Is.EqualTo("b"));
    }

    [Test]
    public void Read_OverlapHiddenBehindAnEmptyTensor_IsStillFound() // the empty tensor sorts between a and b; was accepted
    {
        var e = ReadError("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        Assert.That(e.Message, Does.Contain("tensor b: data_offsets [4,12] overlap tensor a [0,8]"));
    }

    [Test]
    public void Read_MissingField_NamesTensor()
    {
        var e = ReadError("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", new byte[4]);
        Assert.That(e.Message, Does.Contain("tensor w: missing array field 'shape'"));
    }

    [Test]
    public void NamedTensors_Add_RejectsLengthMismatch()
    {
        var t = new NamedTensors("src");
        var e = Assert.Throws<ArgumentException>(() => t.Add("w", [2, 2], new float[3]))!;
        Assert.That(e.ParamName, Is.EqualTo("data"));
        Assert.That(e.Message, Does.Contain("tensor w has shape [2,2] (4 elements) but 3 values"));
    }

    [Test]
    public void Read_DuplicateTensorName_NamesTensor()
    {
        var e = ReadError("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        Assert.That(e.Message, Does.Contain("tensor w appears twice in the header"));
    }

    [Test]
    public void WriteViews_SlicesOfOneBuffer_EqualNamedTensorsOutput()
    {
        using var dir = new TempDir();
        var flat = Random(10, 5);
        var memory = new ReadOnlyMemory<float>(flat);
        Safetensors.Write(dir.File("v.safetensors"), [new TensorView("w", [2, 3], memory[..6]), new TensorView("b", [4], memory[6..])]);
        var t = new NamedTensors();
        t.Add("w", [2, 3], flat[..6]);
        t.Add("b", [4], flat[6..]);
        Safetensors.Write(dir.File("t.safetensors"), t);
        Assert.That(File.ReadAllBytes(dir.File("v.safetensors")), Is.EqualTo(File.ReadAllBytes(dir.File("t.safetensors"))));

        var e = Assert.Throws<ArgumentException>(() => Safetensors.Write(dir.File("x.safetensors"), [new TensorView("w", [2, 3], memory[..5])]))!;
        Assert.That(e.Message, Does.Contain("tensor w has shape [2,3] but 5 values"));
        Assert.That(File.Exists(dir.File("x.safetensors")), Is.False);
    }

    [Test]
    public void Read_HalfTypes_EveryBitPatternMatchesScalarConversion()
    {
        // All 65536 16-bit patterns (covers the vector loop, its tail, subnormals, NaN payloads, ±Inf, ±0).
        using var dir = new TempDir();
        var bytes = new byte[65536 * 2 + 2];
        for (int i = 0; i < 65536; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), (ushort)i);
        }

        bytes[^2] = 0x80; // one more element so the count is not a multiple of the vector width
        string header = "{\"h\":{\"dtype\":\"F16\",\"shape\":[65537],\"data_offsets\":[0,131074]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[65537],\"data_offsets\":[131074,262148]}}";
        string path = dir.File("all.safetensors");
        WriteRawSafetensors(path, header, [.. bytes, .. bytes]);
        using var file = SafetensorsFile.Open(path);
        var h = file.ReadFloats("h");
        var b = file.ReadFloats("b");
        string? firstMismatch = null;
        for (int i = 0; i < 65537 && firstMismatch is null; i++)
        {
            ushort bits = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i));
            float expectedH = (float)BitConverter.UInt16BitsToHalf(bits);
            float expectedB = BitConverter.Int32BitsToSingle(bits << 16);
            if (BitConverter.SingleToInt32Bits(b[i]) != BitConverter.SingleToInt32Bits(expectedB))
            {
                firstMismatch = $"bf16 {bits:X4}: {b[i]} != {expectedB}";
            }
            else if (float.IsNaN(expectedH) ? !float.IsNaN(h[i]) : BitConverter.SingleToInt32Bits(h[i]) != BitConverter.SingleToInt32Bits(expectedH))
            {
                firstMismatch = $"f16 {bits:X4}: {h[i]} != {expectedH}";
            }
        }

        Assert.That(firstMismatch, Is.Null);
    }
}
