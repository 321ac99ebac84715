using System.Runtime.InteropServices;
using Rlhf.IO;

namespace Rlhf.Onnx;

/// <summary>ONNX TensorProto.DataType values used here.</summary>
internal enum OnnxDataType
{
    Float = 1,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
}

/// <summary>
/// Builds one ONNX graph (nodes, initializers, inputs, outputs) and serializes it as a ModelProto with a hand-written
/// protobuf encoder. Initializers reference their data (e.g. slices of a model's flat buffer) until <see cref="Save"/>
/// streams them, so a model is not copied in memory. Above <c>externalThreshold</c> bytes of initializers the raw
/// data goes to "{file}.data" (ONNX external data), as a single protobuf message cannot exceed 2 GB.
/// </summary>
internal sealed class OnnxGraphBuilder(string graphName, int opset)
{
    private const int IrVersion = 8;
    private readonly List<ProtoWriter> nodes = new();
    private readonly List<(string Name, long[] Dims, ReadOnlyMemory<float> Floats, long[]? Longs)> initializers = new();
    private readonly List<ProtoWriter> inputs = new(), outputs = new();
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> constants = new(StringComparer.Ordinal);
    private int counter;

    public int Opset { get; } = opset;

    /// <summary>A graph input; each dimension is a fixed size (an integer) or symbolic (a string).</summary>
    public string Input(string name, OnnxDataType type, params object[] dims)
    {
        Claim(name);
        inputs.Add(ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> (an existing node output) as the graph output <paramref name="name"/>.</summary>
    public void Output(string value, string name, OnnxDataType type, params object[] dims)
    {
        if (value != name) Node("Identity", [value], name);
        outputs.Add(ValueInfo(name, type, dims));
    }

    /// <summary>A float initializer backed by <paramref name="data"/> (not copied until saved).</summary>
    public string Initializer(string name, ReadOnlyMemory<float> data, params long[] dims)
    {
        long count = 1;
        foreach (long d in dims) count *= d;
        if (count != data.Length) throw new ArgumentException($"initializer '{name}' has {data.Length} values, its shape needs {count}.", nameof(data));
        Claim(name);
        initializers.Add((name, dims, data, null));
        return name;
    }

    /// <summary>Declares an initializer as a graph input too, so callers may feed a new value (it stays the default).</summary>
    public void InputWithDefault(string name, ReadOnlyMemory<float> data, params long[] dims)
    {
        Initializer(name, data, dims);
        var d = new object[dims.Length];
        for (int i = 0; i < dims.Length; i++) d[i] = dims[i];
        inputs.Add(ValueInfo(name, OnnxDataType.Float, d));
    }

    /// <summary>An int64 constant (a shared initializer per distinct value; a scalar when <paramref name="scalar"/>).</summary>
    public string ConstInt64(long[] values, bool scalar = false)
    {
        string key = (scalar ? "s" : "v") + string.Join(",", values);
        if (constants.TryGetValue(key, out var existing)) return existing;
        string name = Fresh("const_i64");
        initializers.Add((name, scalar ? [] : [values.Length], default, values));
        constants.Add(key, name);
        return name;
    }

    /// <summary>A float scalar constant.</summary>
    public string ConstFloat(float value)
    {
        string key = "f" + BitConverter.SingleToInt32Bits(value);
        if (constants.TryGetValue(key, out var existing)) return existing;
        string name = Fresh("const_f32");
        initializers.Add((name, [], new float[] { value }, null));
        constants.Add(key, name);
        return name;
    }

    /// <summary>Adds a node with one output (named <paramref name="output"/> or a fresh name) and returns that output.</summary>
    public string Node(string op, string[] nodeInputs, string? output = null, params ProtoWriter[] attributes)
    {
        output ??= Fresh(op);
        if (!names.Contains(output)) Claim(output);
        NodeMulti(op, nodeInputs, [output], attributes);
        return output;
    }

    /// <summary>Adds a node with <paramref name="outputCount"/> fresh outputs.</summary>
    public string[] Node(string op, string[] nodeInputs, int outputCount, params ProtoWriter[] attributes)
    {
        var outs = new string[outputCount];
        for (int i = 0; i < outputCount; i++) outs[i] = Fresh(op);
        NodeMulti(op, nodeInputs, outs, attributes);
        return outs;
    }

    public static ProtoWriter Attr(string name, long value) => Attribute(name, 2, w => w.Varint(3, value));

    public static ProtoWriter Attr(string name, float value) => Attribute(name, 1, w => w.Float(2, value));

    public static ProtoWriter Attr(string name, long[] values) => Attribute(name, 7, w =>
    {
        foreach (long v in values) w.Varint(8, v);
    });

    /// <summary>Writes the model to <paramref name="path"/> (and "{path}.data" when the initializers exceed <paramref name="externalThreshold"/> bytes).</summary>
    public void Save(string path, long externalThreshold, IReadOnlyDictionary<string, string>? metadata = null)
    {
        long total = 0;
        foreach (var init in initializers) total += DataBytes(init).Length;
        bool external = total > externalThreshold;
        string dataFile = Path.GetFileName(path) + ".data";
        string dataPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, dataFile);

        // Graph fields other than initializers, and each initializer's header, are small: encode them now.
        var graphRest = new ProtoWriter();
        foreach (var n in nodes) graphRest.Message(1, n);
        graphRest.String(2, graphName);
        foreach (var i in inputs) graphRest.Message(11, i);
        foreach (var o in outputs) graphRest.Message(12, o);
        var headers = new ProtoWriter[initializers.Count];
        long graphLength = graphRest.Length, offset = 0;
        for (int k = 0; k < initializers.Count; k++)
        {
            var init = initializers[k];
            var h = new ProtoWriter();
            h.PackedInt64(1, init.Dims);
            h.Varint(2, (long)(init.Longs is null ? OnnxDataType.Float : OnnxDataType.Int64));
            h.String(8, init.Name);
            long bytes = DataBytes(init).Length;
            long tensorLength = h.Length;
            if (external && init.Longs is null)
            {
                offset = (offset + 4095) & ~4095L;
                h.Message(13, Entry("location", dataFile));
                h.Message(13, Entry("offset", offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                h.Message(13, Entry("length", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                h.Varint(14, 1);
                offset += bytes;
                tensorLength = h.Length;
            }
            else
            {
                tensorLength += ProtoWriter.FieldSize(9, bytes);
            }

            headers[k] = h;
            graphLength += ProtoWriter.FieldSize(5, tensorLength);
        }

        var model = new ProtoWriter();
        model.Varint(1, IrVersion);
        model.String(2, "rlhf");
        model.String(3, "1");
        var opsetId = new ProtoWriter();
        opsetId.String(1, "");
        opsetId.Varint(2, Opset);
        model.Message(8, opsetId);
        if (metadata != null)
        {
            foreach (var kv in metadata) model.Message(14, Entry(kv.Key, kv.Value));
        }

        model.LengthPrefix(7, graphLength);

        // The data file first: a reader that sees the new graph also finds its weights.
        if (external) AtomicFile.Write(dataPath, WriteExternalData);
        else if (File.Exists(dataPath)) File.Delete(dataPath);
        AtomicFile.Write(path, stream =>
        {
            model.WriteTo(stream);
            graphRest.WriteTo(stream);
            for (int k = 0; k < initializers.Count; k++)
            {
                var init = initializers[k];
                long dataLength = DataBytes(init).Length;
                bool inline = !external || init.Longs != null;
                var p = new ProtoWriter();
                p.LengthPrefix(5, headers[k].Length + (inline ? ProtoWriter.FieldSize(9, dataLength) : 0));
                p.WriteTo(stream);
                headers[k].WriteTo(stream);
                if (!inline) continue;
                p = new ProtoWriter();
                p.LengthPrefix(9, dataLength);
                p.WriteTo(stream);
                stream.Write(DataBytes(init));
            }
        });
    }

    private void WriteExternalData(Stream stream)
    {
        long at = 0;
        foreach (var init in initializers)
        {
            if (init.Longs != null) continue;
            long aligned = (at + 4095) & ~4095L;
            if (aligned > at) stream.Write(new byte[aligned - at]);
            var data = DataBytes(init);
            stream.Write(data);
            at = aligned + data.Length;
        }
    }

    private static ReadOnlySpan<byte> DataBytes((string Name, long[] Dims, ReadOnlyMemory<float> Floats, long[]? Longs) init) =>
        init.Longs != null ? MemoryMarshal.AsBytes(init.Longs.AsSpan()) : MemoryMarshal.AsBytes(init.Floats.Span);

    private void NodeMulti(string op, string[] nodeInputs, string[] nodeOutputs, ProtoWriter[] attributes)
    {
        var n = new ProtoWriter();
        foreach (var i in nodeInputs) n.String(1, i);
        foreach (var o in nodeOutputs) n.String(2, o);
        n.String(3, nodeOutputs[0] + "_node");
        n.String(4, op);
        foreach (var a in attributes) n.Message(5, a);
        nodes.Add(n);
    }

    private static ProtoWriter Attribute(string name, int type, Action<ProtoWriter> value)
    {
        var a = new ProtoWriter();
        a.String(1, name);
        value(a);
        a.Varint(20, type);
        return a;
    }

    private static ProtoWriter Entry(string key, string value)
    {
        var e = new ProtoWriter();
        e.String(1, key);
        e.String(2, value);
        return e;
    }

    private static ProtoWriter ValueInfo(string name, OnnxDataType type, object[] dims)
    {
        var shape = new ProtoWriter();
        foreach (var d in dims)
        {
            var dim = new ProtoWriter();
            if (d is string s) dim.String(2, s);
            else dim.Varint(1, Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture));
            shape.Message(1, dim);
        }

        var tensor = new ProtoWriter();
        tensor.Varint(1, (int)type);
        tensor.Message(2, shape);
        var typeProto = new ProtoWriter();
        typeProto.Message(1, tensor);
        var vi = new ProtoWriter();
        vi.String(1, name);
        vi.Message(2, typeProto);
        return vi;
    }

    private string Fresh(string hint)
    {
        string name;
        do name = $"{hint}_{counter++}";
        while (names.Contains(name));
        names.Add(name);
        return name;
    }

    private void Claim(string name)
    {
        if (!names.Add(name)) throw new ArgumentException($"graph name '{name}' is used twice.", nameof(name));
    }
}
