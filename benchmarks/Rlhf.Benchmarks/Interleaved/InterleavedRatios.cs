using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using BenchmarkDotNet.Attributes;

namespace Rlhf.Benchmarks.Interleaved;

/// <summary>
/// Runs the [Benchmark] methods of the BenchmarkDotNet suites whose class name contains a filter round-robin, one
/// measurement of each per round, and reports per method the median time and the median of its per-round ratio to the
/// suite's baseline: <c>dotnet run -c Release --project benchmarks/Rlhf.Benchmarks -- --interleaved FILTER [rounds]</c>.
/// </summary>
/// <remarks>
/// BenchmarkDotNet measures one method after another, so a machine whose speed drifts by 20–40 % within minutes (the
/// 2-core build box) moves its Ratio column by as much. Here a kernel and its baseline are timed back to back in every
/// round (the starting method rotates), so slow drift cancels in the per-round ratio; its quartiles show what is left.
/// A supplement to the suites, not a replacement: no statistics beyond quartiles, no separate process, no pilot stage
/// beyond sizing each measurement to at least <see cref="MinimumMeasurement"/>.
/// </remarks>
internal static class InterleavedRatios
{
    private static readonly TimeSpan MinimumMeasurement = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan WarmUp = TimeSpan.FromMilliseconds(500);
    private const int WarmUpRounds = 2;

    public static void Run(string[] args)
    {
        if (args.Length == 0) throw new ArgumentException("usage: --interleaved FILTER [rounds]: FILTER is part of a suite's class name.", nameof(args));
        string filter = args[0];
        int rounds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 21;
        var suites = typeof(InterleavedRatios).Assembly.GetTypes()
            .Where(t => !t.IsAbstract && t.IsPublic && t.Name.Contains(filter, StringComparison.OrdinalIgnoreCase) && BenchmarkMethods(t).Count > 0)
            .OrderBy(t => t.Name, StringComparer.Ordinal)
            .ToList();
        if (suites.Count == 0) throw new ArgumentException($"no benchmark suite's class name contains '{filter}'.", nameof(args));

        Console.WriteLine($"{rounds} rounds after {WarmUpRounds} warm-up rounds, each method once per round (≥ {MinimumMeasurement.TotalMilliseconds} ms per measurement), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC\n");
        Console.WriteLine("| suite | parameters | method | median | min | ratio, median of rounds | ratio, quartiles |");
        Console.WriteLine("| --- | --- | --- | ---: | ---: | ---: | ---: |");
        foreach (var suite in suites)
        {
            foreach (var parameters in ParameterCombinations(suite)) RunCase(suite, parameters, rounds);
        }
    }

    private static void RunCase(Type suite, IReadOnlyList<(MemberInfo Member, object? Value)> parameters, int rounds)
    {
        object instance = Activator.CreateInstance(suite)!;
        foreach (var (member, value) in parameters) SetMember(instance, member, value);
        foreach (var setup in MethodsWith<GlobalSetupAttribute>(suite)) setup.Invoke(instance, null);
        try
        {
            var methods = BenchmarkMethods(suite).Select(m => new Measured(m, instance)).ToList();
            int baseline = Math.Max(0, methods.FindIndex(m => m.IsBaseline));
            foreach (var m in methods) m.Calibrate(MinimumMeasurement);

            var times = methods.Select(_ => new List<double>(rounds)).ToList();
            var ratios = methods.Select(_ => new List<double>(rounds)).ToList();
            var round = new double[methods.Count];
            for (int r = -WarmUpRounds; r < rounds; r++)
            {
                for (int k = 0; k < methods.Count; k++)
                {
                    int i = (r + WarmUpRounds + k) % methods.Count;
                    round[i] = methods[i].Measure();
                }

                if (r < 0) continue;
                for (int i = 0; i < methods.Count; i++)
                {
                    times[i].Add(round[i]);
                    ratios[i].Add(round[i] / round[baseline]);
                }
            }

            string parameterText = string.Join(", ", parameters.Select(p => $"{p.Member.Name}={p.Value}"));
            for (int i = 0; i < methods.Count; i++)
            {
                times[i].Sort();
                ratios[i].Sort();
                Console.WriteLine(
                    $"| {suite.Name} | {parameterText} | {methods[i].Name} | {Format(Quantile(times[i], 0.5))} | {Format(times[i][0])} " +
                    $"| {Quantile(ratios[i], 0.5):F2} | {Quantile(ratios[i], 0.25):F2}–{Quantile(ratios[i], 0.75):F2} |");
            }
        }
        finally
        {
            foreach (var cleanup in MethodsWith<GlobalCleanupAttribute>(suite)) cleanup.Invoke(instance, null);
        }
    }

    /// <summary>One [Benchmark] method bound to its suite instance, called enough times per measurement.</summary>
    private sealed class Measured(MethodInfo method, object instance)
    {
        private readonly Action call = method.ReturnType == typeof(void)
            ? method.CreateDelegate<Action>(instance)
            : (Action)typeof(Measured).GetMethod(nameof(Discarding), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(method.ReturnType)
                .Invoke(null, [method.CreateDelegate(typeof(Func<>).MakeGenericType(method.ReturnType), instance)])!;

        private readonly int operationsPerCall = Math.Max(1, method.GetCustomAttribute<BenchmarkAttribute>()!.OperationsPerInvoke);
        private int callsPerMeasurement = 1;

        public string Name { get; } = method.GetCustomAttribute<BenchmarkAttribute>()!.Description ?? method.Name;

        public bool IsBaseline { get; } = method.GetCustomAttribute<BenchmarkAttribute>()!.Baseline;

        /// <summary>
        /// Warms the method up for <see cref="WarmUp"/> and at least 50 calls (the JIT's tiers promote a method after 30 calls
        /// and a 100 ms delay) and sizes a measurement to at least <paramref name="minimum"/>.
        /// </summary>
        public void Calibrate(TimeSpan minimum)
        {
            var watch = Stopwatch.StartNew();
            int calls = 0;
            while (calls < 50 || watch.Elapsed < WarmUp)
            {
                call();
                calls++;
            }

            watch.Restart();
            for (int i = 0; i < 5; i++) call();
            double once = Math.Max(watch.Elapsed.TotalMilliseconds / 5, 1e-4);
            callsPerMeasurement = (int)Math.Clamp(Math.Ceiling(minimum.TotalMilliseconds / once), 1, 1_000_000);
        }

        /// <summary>A call through a typed delegate whose result is kept (as BenchmarkDotNet consumes it), so a method
        /// that returns a value pays no reflection or boxing that a void one does not.</summary>
        private static Action Discarding<T>(Func<T> method) => () => Sink<T>.Value = method();

        private static class Sink<T>
        {
            public static T? Value;
        }

        /// <summary>Milliseconds per operation, averaged over one measurement.</summary>
        public double Measure()
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < callsPerMeasurement; i++) call();
            return watch.Elapsed.TotalMilliseconds / callsPerMeasurement / operationsPerCall;
        }
    }

    private static List<MethodInfo> BenchmarkMethods(Type suite) => MethodsWith<BenchmarkAttribute>(suite);

    private static List<MethodInfo> MethodsWith<TAttribute>(Type suite)
        where TAttribute : Attribute =>
        suite.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m.GetCustomAttribute<TAttribute>() is not null && m.GetParameters().Length == 0)
            .OrderBy(m => m.MetadataToken)
            .ToList();

    /// <summary>Every combination of the suite's [Params] and [ParamsAllValues] values (inherited members too), in
    /// declaration order.</summary>
    private static IEnumerable<IReadOnlyList<(MemberInfo Member, object? Value)>> ParameterCombinations(Type suite)
    {
        var members = suite.GetMembers(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m is PropertyInfo or FieldInfo)
            .Select(m => (Member: m, Values: ParameterValues(m)))
            .Where(p => p.Values is not null)
            .ToList();
        IEnumerable<IReadOnlyList<(MemberInfo, object?)>> combinations = [[]];
        foreach (var (member, values) in members)
            combinations = combinations.SelectMany(c => values!.Select(v => (IReadOnlyList<(MemberInfo, object?)>)[.. c, (member, v)]));
        return combinations;
    }

    private static object?[]? ParameterValues(MemberInfo member)
    {
        if (member.GetCustomAttribute<ParamsAttribute>() is { } parameters) return parameters.Values;
        if (member.GetCustomAttribute<ParamsAllValuesAttribute>() is null) return null;
        var type = member is PropertyInfo property ? property.PropertyType : ((FieldInfo)member).FieldType;
        if (type == typeof(bool)) return [false, true];
        if (type.IsEnum) return Enum.GetValues(type).Cast<object?>().ToArray();
        throw new NotSupportedException($"[ParamsAllValues] on {member.Name}: only bool and enum members are supported.");
    }

    private static void SetMember(object instance, MemberInfo member, object? value)
    {
        if (member is PropertyInfo property) property.SetValue(instance, value);
        else ((FieldInfo)member).SetValue(instance, value);
    }

    private static double Quantile(List<double> sorted, double q)
    {
        double position = q * (sorted.Count - 1);
        int below = (int)Math.Floor(position);
        int above = Math.Min(below + 1, sorted.Count - 1);
        return sorted[below] + (position - below) * (sorted[above] - sorted[below]);
    }

    private static string Format(double milliseconds) =>
        milliseconds >= 1 ? $"{milliseconds:F2} ms" : $"{milliseconds * 1000:F2} µs";
}
