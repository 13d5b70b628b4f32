// A console (or any program) run as a child process: for what only a separate process shows, such as an exit
// code, or a crash at a chosen point and the recovery of the next start.
using System.Diagnostics;
using System.Text;

namespace QubesWeb.IntegrationTests;

/// <summary>A child process whose output is collected as it comes; disposing kills it if it still runs.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly StringBuilder _stdout = new(), _stderr = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _watchers = [];
    private readonly object _gate = new();

    /// <summary>dotnet QubesWeb.dll from this test's output folder (the web project is referenced), no shell.</summary>
    public static ProcessStartInfo Console(string dataDir)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "QubesWeb.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: the web project should be copied next to the tests.");
        return Dotnet(dataDir, dll, $"--DataDir={dataDir}");
    }

    /// <summary>
    /// This test assembly run as a program (see Program.cs) with <paramref name="args"/>, no shell, from
    /// <paramref name="workingDir"/>.
    /// </summary>
    public static ProcessStartInfo TestProgram(string workingDir, params string[] args)
    {
        var psi = Dotnet(workingDir, [typeof(ChildProcess).Assembly.Location, .. args]);
        // A child lives seconds, mostly compiling the console's code: the instrumentation profile-guided tiering adds
        // to every method it compiles first is never paid back in a process that short (about a tenth of its CPU).
        psi.Environment["DOTNET_TieredPGO"] = "0";
        // Nor is compiling a hot method a second time, optimized: the child dies before that second version would
        // have saved the CPU it costs. Its code is mostly ahead-of-time compiled already (ReadyToRunTestRun).
        psi.Environment["DOTNET_TC_CallCounting"] = "0";
        return psi;
    }

    private static ProcessStartInfo Dotnet(string workingDir, params string[] args)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(dotnet) || !File.Exists(dotnet)) dotnet = "dotnet";
        var psi = new ProcessStartInfo(dotnet)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDir,
        };
        Directory.CreateDirectory(workingDir);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return WithoutListeningSettings(psi);
    }

    /// <summary>Whatever the test runner's environment says about listening is not part of the case.</summary>
    private static ProcessStartInfo WithoutListeningSettings(ProcessStartInfo psi)
    {
        foreach (var key in psi.Environment.Keys.Where(k =>
                     k.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase) || k.StartsWith("QUBESWEB_", StringComparison.OrdinalIgnoreCase)
                     || k.StartsWith("DOTNET_URLS", StringComparison.OrdinalIgnoreCase) || k.StartsWith("DOTNET_HTTP", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        return psi;
    }


    private ChildProcess(Process process) => Process = process;

    public Process Process { get; }
    public string Stdout { get { lock (_gate) return _stdout.ToString(); } }
    public string Stderr { get { lock (_gate) return _stderr.ToString(); } }

    public static ChildProcess Start(ProcessStartInfo psi)
    {
        var child = new ChildProcess(new Process { StartInfo = psi, EnableRaisingEvents = true });
        child.Process.OutputDataReceived += (_, e) => child.OnLine(e.Data, child._stdout);
        child.Process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, child._stderr);
        Assert.True(child.Process.Start(), "The console process did not start.");
        child.Process.BeginOutputReadLine();
        child.Process.BeginErrorReadLine();
        return child;
    }

    private void OnLine(string? line, StringBuilder into)
    {
        if (line is null) return;
        lock (_gate)
        {
            into.AppendLine(line);
            if (into != _stdout) return;
            foreach (var (match, found) in _watchers)
                if (match(line)) found.TrySetResult(line);
        }
    }

    /// <summary>The first stdout line (so far or to come) that matches, or null at the deadline or when the process ends.</summary>
    public async Task<string?> WaitForStdoutAsync(Func<string, bool> match, TimeSpan deadline)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var seen = _stdout.ToString().Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(match);
            if (seen is not null) return seen;
            _watchers.Add((match, found));
        }
        using var cts = new CancellationTokenSource(deadline);
        var exited = Process.WaitForExitAsync(cts.Token);
        var first = await Task.WhenAny(found.Task, exited);
        return first == found.Task ? await found.Task : null;
    }

    /// <summary>Whether the process ended (and its output was read to the end) within the deadline.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan deadline)
    {
        using var cts = new CancellationTokenSource(deadline);
        try
        {
            await Process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                Process.WaitForExit(TimeSpan.FromSeconds(30));
            }
        }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
