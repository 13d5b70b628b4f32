// Benchmarks print figures and their ratio against a baseline measured in the same run; they never pass or fail.
// Run: dotnet run -c Release --project tests/QubesWeb.Benchmarks [-- reconcile|ui|revisions|copy] [--domains N]
using QubesWeb.Benchmarks;

var domains = args.SkipWhile(a => a != "--domains").Skip(1).Select(int.Parse).DefaultIfEmpty(1000).First();
var which = args.FirstOrDefault(a => !a.StartsWith("--") && !int.TryParse(a, out _)) ?? "reconcile";
switch (which)
{
    case "reconcile":
        await ReconcileBenchmark.RunAsync(domains);
        return 0;
    case "ui":
        await UiBenchmark.RunAsync(domains);
        return 0;
    case "revisions":
        await RevisionsBenchmark.RunAsync();
        return 0;
    case "copy":
        await CopyBenchmark.RunAsync();
        return 0;
    default:
        Console.Error.WriteLine($"Unknown benchmark '{which}'. Known: reconcile, ui, revisions, copy.");
        return 2;
}
