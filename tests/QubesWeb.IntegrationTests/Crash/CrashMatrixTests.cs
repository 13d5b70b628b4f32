// Crash anywhere: for every job kind and each of its steps, the console (a child process) is killed with SIGKILL at
// that step, started again on the same data folder, and the recovered estate is checked: consistent (inventory,
// files and libvirt agree, the database is sound, nothing left over), the job marked interrupted with its recovery
// done, the touched root reading as before the crash (or as the job would have left it) and starting. The child says
// each fault point it reaches, so the matrix knows every step a job takes and fails on one that no case aims at.
//
// Each case owns its data folder, a copy of the demo estate made once (PristineEstate), and its libvirt node file (the
// demo's, inside the folder). The test driver forgets the killed process's domains; the inventory is what exists, and
// the next start (the console's services, CrashConsole, in this process) defines them again from it. Cases run a few
// at a time (CrashMatrix): each is mostly a child console's start, the runtime compiling the console's code.
using QubesWeb.Services;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using QubesWeb.Hosting;
using QubesWeb.Services.Storage;
using Xunit.Abstractions;

namespace QubesWeb.IntegrationTests.Crash;

/// <param name="Reached">The steps of the case (<see cref="CrashKind.StepOf"/>) the child said it reached before it was killed, in order.</param>
public sealed record CrashOutcome(CrashKind Case, string Step, TimeSpan Took, Exception? Error, IReadOnlyList<string> Reached)
{
    public string Kind => Case.Kind;
}

/// <summary>Runs the cases, a few at once, each once however many tests ask for it.</summary>
public sealed class CrashMatrix : IAsyncLifetime
{
    private static readonly int Concurrency = Math.Max(2, Environment.ProcessorCount);
    private readonly SemaphoreSlim _slots = new(Concurrency);
    private readonly ConcurrentDictionary<(string Name, string Step), Task<CrashOutcome>> _cases = new();

    /// <summary>The demo estate every case starts from, made by the first case that needs it.</summary>
    private readonly Lazy<Task<string>> _pristine = new(PristineEstate.MakeAsync);

    public static IEnumerable<(CrashKind Kind, string Step)> Cases => CrashKinds.All.SelectMany(k => k.Steps.Select(s => (k, s)));

    /// <summary>
    /// The case's outcome; asking for one also starts the next cases not started yet, up to the number that run at
    /// once, so the other core is busy while this case's test waits.
    /// </summary>
    public Task<CrashOutcome> OutcomeAsync(string name, string step)
    {
        var wanted = Start(CrashKinds.Of(name), step);
        foreach (var (k, s) in Cases.Where(c => !_cases.ContainsKey((c.Kind.Name, c.Step))).Take(Concurrency - 1)) Start(k, s);
        return wanted;
    }

    public Task<CrashOutcome[]> AllAsync() => Task.WhenAll(Cases.Select(c => Start(c.Kind, c.Step)));

    private Task<CrashOutcome> Start(CrashKind kind, string step) => _cases.GetOrAdd((kind.Name, step), _ => Task.Run(async () =>
    {
        await _slots.WaitAsync();
        var clock = Stopwatch.StartNew();
        var reached = new List<string>();
        try
        {
            await RunCaseAsync(kind, step, reached);
            return new CrashOutcome(kind, step, clock.Elapsed, null, reached);
        }
        catch (Exception e)
        {
            return new CrashOutcome(kind, step, clock.Elapsed, e, reached);
        }
        finally
        {
            _slots.Release();
        }
    }));

    private async Task RunCaseAsync(CrashKind kind, string step, List<string> reached)
    {
        var dataDir = ConsoleHost.NewDataDir();
        try
        {
            long jobId;
            await PristineEstate.CopyAsync(await _pristine.Value, dataDir);
            var point = kind.FaultPoint(step);
            var psi = ChildProcess.TestProgram(dataDir, CrashHarness.Command, dataDir, kind.Name);
            psi.Environment[FaultPoints.Variable] = point;
            using (var child = ChildProcess.Start(psi))
            {
                var exited = await child.WaitForExitAsync(TimeSpan.FromSeconds(150));
                var said = $"\nstdout:\n{child.Stdout}\nstderr:\n{child.Stderr}";
                Assert.True(exited, $"The console did not die at {point} in time.{said}");
                Assert.True(child.Process.ExitCode == 137, $"The console ended with exit code {child.Process.ExitCode}, not killed at {point}.{said}");
                Assert.Contains($"{FaultPoints.Variable}={point}: killing the process here", child.Stderr);
                var line = child.Stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(CrashHarness.JobLine, StringComparison.Ordinal));
                Assert.True(line is not null, $"The child never said which job it ran.{said}");
                jobId = long.Parse(line[CrashHarness.JobLine.Length..]);
                reached.AddRange(ReachedSteps(kind, child.Stderr));
            }

            await using var console = await CrashConsole.StartAsync(dataDir);
            var host = console.Estate;
            // Jobs start-up queued (a commit of writes found, a detach cut off) run to their end first: the estate is
            // checked as they leave it, not while their files are half-made.
            await Eventually.UntilAsync(async () => (await host.Get<JobEngine>().QueryAsync(new JobQuery { States = [JobState.Queued, JobState.Running] })).Count == 0,
                "the jobs start-up queued to finish", TimeSpan.FromSeconds(120));
            await EstateConsistency.AssertAsync(host);

            var jobs = host.Get<JobEngine>();
            var job = (await jobs.GetAsync(jobId))!;
            var log = string.Join("\n", job.Log.Select(l => l.Text));
            Assert.True(job.State == JobState.Interrupted, $"Job #{jobId} ({job.Kind}) is {job.State}, not interrupted:\n{log}");
            Assert.Contains("it was interrupted. Running its recovery step.", log);
            Assert.DoesNotContain("Recovery failed", log);
            foreach (var other in await jobs.QueryAsync(new JobQuery { States = [JobState.Interrupted] }))
                Assert.False(other.Error?.StartsWith("Recovery failed", StringComparison.Ordinal) ?? false, $"Job #{other.Id} ({other.Kind}): {other.Error}");

            if (kind.Root is not null) await EstateConsistency.AssertRootRecoveredAsync(host, kind.Root, kind.MakesNewData);
            await kind.Verify(host, step);
            // Still consistent after the qubes were started and stopped again.
            await EstateConsistency.AssertAsync(host);
        }
        finally
        {
            await DeleteFolderAsync(dataDir);
        }
    }

    /// <summary>
    /// Work the console started without awaiting it (a usage refresh, a reconciliation queued by a last event) may
    /// still touch the folder a moment after its services stopped; the folder goes once that has finished.
    /// </summary>
    private static Task DeleteFolderAsync(string dir) => Eventually.UntilAsync(() =>
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }, $"{dir} deleted", TimeSpan.FromSeconds(10));

    /// <summary>The case's steps the child said it reached once its setup was done (the job's, not the setup's).</summary>
    private static IEnumerable<string> ReachedSteps(CrashKind kind, string stderr) =>
        stderr.Split('\n').Select(l => l.Trim()).SkipWhile(l => l != CrashHarness.RunLine)
            .Where(l => l.StartsWith(FaultPoints.ReachedLine, StringComparison.Ordinal))
            .Select(l => kind.StepOf(l[FaultPoints.ReachedLine.Length..])).OfType<string>().Distinct();

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>No child process outlives the tests: cases started ahead are waited for.</summary>
    public async Task DisposeAsync()
    {
        await Task.WhenAll(_cases.Values);
        if (_pristine.IsValueCreated && _pristine.Value.IsCompletedSuccessfully) await DeleteFolderAsync(_pristine.Value.Result);
    }
}

public sealed class CrashMatrixTests(CrashMatrix matrix, ITestOutputHelper output) : IClassFixture<CrashMatrix>
{
    public static TheoryData<string, string> KindsAndSteps()
    {
        var data = new TheoryData<string, string>();
        foreach (var (kind, step) in CrashMatrix.Cases) data.Add(kind.Name, step);
        return data;
    }

    [Theory]
    [MemberData(nameof(KindsAndSteps))]
    public async Task Killed_at_a_step_of_a_job_the_next_start_recovers_a_consistent_estate(string kind, string step)
    {
        var outcome = await matrix.OutcomeAsync(kind, step);
        output.WriteLine($"{kind} killed at {CrashKinds.Of(kind).FaultPoint(step)}: {(outcome.Error is null ? "recovered" : "FAILED")} in {outcome.Took.TotalSeconds:0.0} s");
        if (outcome.Error is not null) throw new Xunit.Sdk.XunitException($"{kind} killed at {step}: {outcome.Error}");
    }

    [Fact]
    public async Task The_matrix_covers_every_job_kind_the_engine_runs()
    {
        var outcomes = await matrix.AllAsync();
        var registered = RegisteredKinds();
        var table = new StringBuilder();
        table.AppendLine("Crash matrix: the console killed (SIGKILL) at each step of each job kind, then started again and checked.");
        table.AppendLine($"{"kind",-18} | steps (ok = recovered consistent, FAIL = see that case's test; (variant) = a second estate of the kind)");
        table.AppendLine(new string('-', 18) + "-+-" + new string('-', 90));
        var unaimed = new List<string>();
        foreach (var kind in registered.Union(CrashKinds.All.Select(k => k.Kind)).Order(StringComparer.Ordinal))
        {
            var mine = outcomes.Where(o => o.Kind == kind).ToList();
            var cells = mine.Select(o => $"{o.Step}{(o.Case.Variant is { } v ? $" ({v})" : "")}: {(o.Error is null ? "ok" : "FAIL")}").ToList();
            table.AppendLine($"{kind,-18} | {(cells.Count == 0 ? "NOT COVERED" : string.Join(", ", cells))}");
            if (cells.Count == 0) continue;
            // Every step a job of the kind was seen to reach in any of its cases (the case killed at "done" reaches
            // them all), against the steps its rows aim at.
            var aimed = CrashKinds.All.Where(k => k.Kind == kind).SelectMany(k => k.Steps).ToHashSet();
            var notAimed = mine.SelectMany(o => o.Reached).Distinct().Where(s => !aimed.Contains(s)).ToList();
            unaimed.AddRange(notAimed.Select(s => $"{kind}/{s}"));
            table.AppendLine($"{"",-18} |   reached, not aimed at: {(notAimed.Count == 0 ? "none" : string.Join(", ", notAimed))}");
        }
        table.AppendLine($"{outcomes.Length} cases, {outcomes.Count(o => o.Error is null)} recovered; {outcomes.Sum(o => o.Took.TotalSeconds):0} s of case time.");
        table.AppendLine("A kind's steps are the fault points its jobs reached in the matrix's estates, as the child console said each one.");
        var text = table.ToString();
        output.WriteLine(text);
        await File.WriteAllTextAsync(Path.Combine(ArtifactsDir(), "crash-matrix.txt"), text);

        var uncovered = registered.Where(k => CrashKinds.All.All(c => c.Kind != k)).ToList();
        Assert.True(uncovered.Count == 0, $"Job kinds with no step in the crash matrix: {string.Join(", ", uncovered)}");
        Assert.True(unaimed.Count == 0, $"Steps jobs reached that no case aims at (add them to the kind's Steps in CrashKinds): {string.Join(", ", unaimed)}");
    }

    /// <summary>The kinds the job engine is given (the console built, not started).</summary>
    private static IReadOnlyList<string> RegisteredKinds()
    {
        var dataDir = ConsoleHost.NewDataDir();
        var app = QubesWebHost.Build([$"--DataDir={dataDir}", "--Port=0"]);
        try
        {
            return app.Services.GetServices<IJobKind>().Select(k => k.Kind.Name).Order(StringComparer.Ordinal).ToList();
        }
        finally
        {
            ((IDisposable)app).Dispose();
            if (Directory.Exists(dataDir)) Directory.Delete(dataDir, recursive: true);
        }
    }

    private static string ArtifactsDir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "QubesWeb.sln"))) dir = dir.Parent;
        return Directory.CreateDirectory(Path.Combine(dir?.FullName ?? AppContext.BaseDirectory, "artifacts")).FullName;
    }
}
