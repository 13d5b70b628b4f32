// A guest that prints without end, against a real qemu-ga (this machine plays the guest): the job's side stays
// responsive (progress goes on, cancel ends it), and what reaches the log is bounded and says where it was cut.
using System.Diagnostics;
using System.Text;
using QubesWeb.Hypervisor.Agent;
using QubesWeb.Services.Updates;

namespace QubesWeb.IntegrationTests.Agent;

public sealed class GuestFloodTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private static readonly GuestOutputLimits Limits = new(MaxBytesPerRun: 64 << 10, MaxBytesPerJob: 96 << 10, MaxLineLength: 1000);

    [Fact]
    public async Task A_program_printing_without_end_keeps_the_job_responsive_and_its_log_is_cut_where_the_limit_is()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var guest = new AgentGuest("flooding", new GuestAgent(transport));
        var logged = new List<string>();
        var output = new GuestOutputLog(Limits, lines => { lock (logged) logged.AddRange(lines); return Task.CompletedTask; });
        // yes(1) prints its argument forever; a marker in it finds the process afterwards. An argument list, no shell.
        var marker = "qubesweb-flood-" + Guid.NewGuid().ToString("N");
        var line = marker + new string('y', 3000);
        var ticks = 0;
        var floodedForAWhile = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cancel = new CancellationTokenSource();

        var run = guest.RunAsync("/usr/bin/yes", [line], TimeSpan.FromMinutes(10), output, cancel.Token, elapsed =>
        {
            // The progress a job shows while the agent holds the flood: it keeps coming.
            Interlocked.Increment(ref ticks);
            if (elapsed >= TimeSpan.FromSeconds(2)) floodedForAWhile.TrySetResult();
            return Task.CompletedTask;
        });
        await floodedForAWhile.Task.WaitAsync(Generous);
        Assert.True(ticks >= 3, $"progress was reported {ticks} times in two seconds of flooding");
        Assert.False(run.IsCompleted);

        var cancelled = Stopwatch.StartNew();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Generous));
        Assert.True(cancelled.Elapsed < TimeSpan.FromSeconds(15), $"the cancel took {cancelled.Elapsed}");

        // What it printed until the kill is logged up to the run's limit, each line cut, and the cut said.
        Assert.Equal($"[output cut here: a program's output is logged up to 64 KiB; the rest of this one is not logged]", logged[^1]);
        var text = logged.Take(logged.Count - 1).ToList();
        Assert.True(text.Count >= 20, $"{text.Count} lines logged");
        Assert.All(text.SkipLast(1), l => Assert.Equal($"{line[..1000]} [line cut at 1000 characters; it had {line.Length}]", l));
        Assert.StartsWith(marker, text[^1]); // the line the limit fell in, as far as it came
        Assert.True(logged.Sum(l => Encoding.UTF8.GetByteCount(l)) < (64 << 10), "more than the run's limit was logged");

        // The program was killed (not only left behind), and the agent serves the next command.
        var agent = new GuestAgent(transport);
        var left = await agent.RunAsync("/usr/bin/pgrep", ["-f", marker], Generous);
        Assert.Equal(1, left.ExitCode);
        Assert.Equal("after\n", (await agent.RunAsync("/bin/echo", ["after"], Generous)).StdOut);
    }

    [Fact]
    public async Task A_jobs_runs_share_the_jobs_limit_and_a_finished_runs_output_is_cut_at_the_runs_limit()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var guest = new AgentGuest("chatty", new GuestAgent(transport));
        var logged = new List<string>();
        var output = new GuestOutputLog(Limits, lines => { logged.AddRange(lines); return Task.CompletedTask; });

        // seq prints 589 KB and exits: far more than a run may log.
        var first = await guest.RunAsync("/usr/bin/seq", ["1", "100000"], Generous, output, CancellationToken.None);
        Assert.Equal(0, first.ExitCode);
        var cut = logged.IndexOf("[output cut here: a program's output is logged up to 64 KiB; the rest of this one is not logged]");
        Assert.Equal(logged.Count - 1, cut);
        Assert.Equal("1", logged[0]);
        Assert.True(first.Output.Length <= (64 << 10) + 1, $"the run kept {first.Output.Length} characters");

        var second = await guest.RunAsync("/usr/bin/seq", ["1", "100000"], Generous, output, CancellationToken.None);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal("[output cut here: this task's log keeps at most 96 KiB of program output; the rest is not logged]", logged[^1]);
        var secondRun = logged.Skip(cut + 1).SkipLast(1).ToList();
        Assert.Equal("1", secondRun[0]);
        // 96 KiB over both runs: the second logs only what the first left of the job's limit (each run's last line,
        // cut off without its newline, is counted with one here).
        var bytes = logged.Where(l => !l.StartsWith('[')).Sum(l => l.Length + 1);
        Assert.InRange(bytes, 96 << 10, (96 << 10) + 2);

        var third = await guest.RunAsync("/bin/echo", ["still running"], Generous, output, CancellationToken.None);
        Assert.Equal(0, third.ExitCode);
        Assert.Equal("[output cut here: this task's log keeps at most 96 KiB of program output; the rest is not logged]", logged[^1]);
    }
}
