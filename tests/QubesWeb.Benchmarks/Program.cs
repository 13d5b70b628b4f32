// Benchmarks print figures and their ratio against a baseline measured in the same run; they never pass or fail.
// Run: dotnet run -c Release --project tests/QubesWeb.Benchmarks [-- reconcile|ui|network|revisions|copy|instant [--sizes 100,2048] [--runs 5]|import|disposables [--real]|network-start [--real] [--runs 100]|load|console] [--domains N] [--circuits N]
using QubesWeb.Benchmarks;

var domains = args.SkipWhile(a => a != "--domains").Skip(1).Select(int.Parse).DefaultIfEmpty(1000).First();
var circuits = args.SkipWhile(a => a != "--circuits").Skip(1).Select(int.Parse).DefaultIfEmpty(200).First();
var which = args.FirstOrDefault(a => !a.StartsWith("--") && !int.TryParse(a, out _)) ?? "reconcile";
switch (which)
{
    case "reconcile":
        await ReconcileBenchmark.RunAsync(domains);
        return 0;
    case "ui":
        await UiBenchmark.RunAsync(domains);
        return 0;
    case "network":
        await NetworkMapBenchmark.RunAsync(domains);
        return 0;
    case "revisions":
        await RevisionsBenchmark.RunAsync();
        return 0;
    case "instant":
        await InstantCopyBenchmark.RunAsync(args.SkipWhile(a => a != "--sizes").Skip(1).Take(1).SelectMany(a => a.Split(',')).Select(int.Parse).ToList(),
            args.SkipWhile(a => a != "--runs").Skip(1).Select(int.Parse).DefaultIfEmpty(5).First());
        return 0;
    case "copy":
        await CopyBenchmark.RunAsync();
        return 0;
    case "import":
        await ImportBenchmark.RunAsync();
        return 0;
    case "console":
        await ConsoleBenchmark.RunAsync();
        return 0;
    case "disposables":
        await DisposableBenchmark.RunAsync(real: args.Contains("--real"));
        return 0;
    case "network-start":
        await NetworkStartBenchmark.RunAsync(real: args.Contains("--real"),
            args.SkipWhile(a => a != "--runs").Skip(1).Select(int.Parse).DefaultIfEmpty(100).First());
        return 0;
    case "load":
        await LoadBenchmark.RunAsync(domains, circuits, args.SkipWhile(a => a != "--rounds").Skip(1).Select(int.Parse).DefaultIfEmpty(10).First(),
            args.SkipWhile(a => a != "--waves").Skip(1).Select(int.Parse).DefaultIfEmpty(6).First(),
            args.SkipWhile(a => a != "--settle-seconds").Skip(1).Select(int.Parse).DefaultIfEmpty(60).First());
        return 0;
    // The load benchmark's own clients, run by it as a child process.
    case "load-clients":
        return await LoadClients.RunCircuitsAsync(args);
    case "load-refused":
        return await LoadClients.RunRefusedAsync(args);
    default:
        Console.Error.WriteLine($"Unknown benchmark '{which}'. Known: reconcile, ui, network, network-start, revisions, copy, instant, import, disposables, load, console.");
        return 2;
}
