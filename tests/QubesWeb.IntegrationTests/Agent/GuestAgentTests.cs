// The guest agent client against a real qemu-ga (this machine plays the guest): running programs, their output,
// exit codes, timeouts and errors.
using System.Diagnostics;
using System.Text;
using QubesWeb.Hypervisor.Agent;

namespace QubesWeb.IntegrationTests.Agent;

public sealed class GuestAgentTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Ping_is_answered()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        await new GuestAgent(transport).PingAsync();
    }

    [Fact]
    public async Task A_program_gets_the_environment_it_is_given_and_a_malformed_entry_is_refused_before_the_guest_sees_it()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);

        var result = await agent.RunAsync("/usr/bin/env", [], Generous, env: ["http_proxy=http://10.137.0.3:8082/", "HTTPS_PROXY=http://10.137.0.3:8082/"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("http_proxy=http://10.137.0.3:8082/\n", result.StdOut);
        Assert.Contains("HTTPS_PROXY=http://10.137.0.3:8082/\n", result.StdOut);
        foreach (var bad in new[] { "no-equals", "=value", "1X=y", "A B=c", "X=a\0b" })
            Assert.Contains("is not an environment entry NAME=value", (await Assert.ThrowsAsync<ArgumentException>(() => agent.RunAsync("/usr/bin/env", [], Generous, env: [bad]))).Message);
    }

    [Fact]
    public async Task Run_returns_the_output_of_echo()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var result = await new GuestAgent(transport).RunAsync("/bin/echo", ["hello", "guest agent", "ünïcödé"], Generous);

        Assert.Equal(0, result.ExitCode);
        Assert.True(result.Succeeded);
        Assert.Null(result.Signal);
        Assert.Equal("hello guest agent ünïcödé\n", result.StdOut);
        Assert.Equal("", result.StdErr);
        Assert.False(result.OutTruncated);
    }

    [Fact]
    public async Task Run_returns_the_exit_code_and_both_streams_of_a_failing_program()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var result = await new GuestAgent(transport).RunAsync("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"],
            Generous);

        Assert.Equal(3, result.ExitCode);
        Assert.False(result.Succeeded);
        Assert.Equal("out\n", result.StdOut);
        Assert.Equal("err\n", result.StdErr);
    }

    [Fact]
    public async Task Run_returns_what_a_tool_writes_to_stderr()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var result = await new GuestAgent(transport).RunAsync("/bin/ls", ["/nonexistent-qubesweb-path"], Generous);

        Assert.Equal(2, result.ExitCode);
        Assert.Equal("", result.StdOut);
        Assert.Contains("/nonexistent-qubesweb-path", result.StdErr);
        Assert.Contains("No such file or directory", result.StdErr);
        Assert.False(result.ErrTruncated);
    }

    [Fact]
    public async Task Run_returns_a_megabyte_of_output_whole_in_one_chunk_at_the_end()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var chunks = new List<GuestOutputChunk>();
        var expected = new StringBuilder();
        for (var i = 1; i <= 170_000; i++)
        {
            expected.Append(i).Append('\n');
        }

        var result = await new GuestAgent(transport).RunAsync("/usr/bin/seq", ["1", "170000"], Generous, chunks.Add);

        Assert.True(expected.Length > 1 << 20);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal(expected.ToString(), result.StdOut);
        Assert.False(result.OutTruncated);
        // qemu-ga hands output over only once the program has exited.
        var chunk = Assert.Single(chunks);
        Assert.Equal(GuestOutputStream.StdOut, chunk.Stream);
        Assert.Equal(result.StdOut, chunk.Text);
    }

    [Fact]
    public async Task Output_beyond_the_agents_16_MiB_limit_is_cut_and_flagged()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var result = await new GuestAgent(transport).RunAsync("/usr/bin/head", ["-c", "17000000", "/dev/zero"],
            Generous);

        Assert.Equal(0, result.ExitCode);
        Assert.True(result.OutTruncated);
        Assert.Equal(16 << 20, result.StdOut.Length);
        Assert.DoesNotContain(result.StdOut, c => c != '\0');
        Assert.False(result.ErrTruncated);
    }

    [Fact]
    public async Task A_program_running_past_its_timeout_is_killed_and_reported()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var watch = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<GuestExecTimeoutException>(() =>
            new GuestAgent(transport).RunAsync("/bin/sleep", ["30"], TimeSpan.FromSeconds(1)));

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"Took {watch.Elapsed} for a 1 s timeout.");
        Assert.True(error.Killed);
        Assert.Equal($"/bin/sleep (guest pid {error.Pid}) did not finish within 1 s; it was killed.", error.Message);
        Assert.IsAssignableFrom<TimeoutException>(error);
        // The sleep (and the kill that ended it) are gone, reaped by the agent.
        Assert.False(Directory.Exists($"/proc/{error.Pid}"), $"guest pid {error.Pid} still exists");
        Assert.Empty(qga.Children());
        // The connection is still good.
        Assert.Equal("after\n", (await new GuestAgent(transport).RunAsync("/bin/echo", ["after"], Generous)).StdOut);
    }

    [Fact]
    public async Task Cancelling_a_run_kills_the_program()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);
        using var cancel = new CancellationTokenSource();
        var chunks = 0;

        // Cancelled once the sleep runs, so there is a program to kill.
        var run = agent.RunAsync("/bin/sleep", ["31"], Generous, _ => chunks++, cancel.Token);
        await Eventually.UntilAsync(() => qga.Children().Count > 0, "sleep started by qemu-ga");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
        Assert.Null(qga.Ended);
        Assert.Equal(0, chunks);
        Assert.Empty(qga.Children());
        await agent.PingAsync();
    }

    [Fact]
    public async Task Exec_and_exec_status_report_a_program_until_the_agent_forgets_it()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);

        var pid = await agent.ExecAsync("/bin/sh", ["-c", "printf 'a\\nb'; printf oops >&2; exit 5"],
            captureOutput: true);
        GuestExecStatus? status = null;
        await Eventually.UntilAsync(async () => (status = await agent.ExecStatusAsync(pid)).Exited, "the program's exit");

        Assert.Equal(new GuestExecStatus(true, 5, null, "a\nb", "oops", false, false), status);
        // Reported once: the agent dropped it.
        var gone = await Assert.ThrowsAsync<GuestAgentException>(() => agent.ExecStatusAsync(pid));
        Assert.Equal("GenericError", gone.ErrorClass);
        Assert.Contains("pid", gone.Description);
    }

    [Fact]
    public async Task A_program_killed_by_a_signal_reports_the_signal()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var result = await new GuestAgent(transport).RunAsync("/bin/sh", ["-c", "kill -TERM $$"], Generous);

        Assert.Null(result.ExitCode);
        Assert.Equal(15, result.Signal);
        Assert.False(result.Succeeded);
    }

    [Fact]
    public async Task A_missing_program_is_a_clear_error_from_the_guest()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);

        var error = await Assert.ThrowsAsync<GuestAgentException>(() =>
            agent.RunAsync("/nonexistent/qubesweb-program", ["x"], Generous));

        Assert.Equal("guest-exec", error.Command);
        Assert.Equal("GenericError", error.ErrorClass);
        Assert.StartsWith("The guest could not start /nonexistent/qubesweb-program: ", error.Message);
        Assert.Contains("No such file or directory", error.Message);
        await agent.PingAsync();
    }

    [Fact]
    public async Task An_unknown_command_is_the_agents_CommandNotFound()
    {
        using var qga = await QemuGa.StartAsync();
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);

        var error = await Assert.ThrowsAsync<GuestAgentException>(() =>
            transport.ExecuteAsync("guest-qubesweb-nonsense", null, Generous));

        Assert.Equal("CommandNotFound", error.ErrorClass);
        Assert.Equal("The guest agent refused guest-qubesweb-nonsense: The command guest-qubesweb-nonsense has not " +
            "been found (CommandNotFound)", error.Message);
    }

    [Fact]
    public async Task Shutdown_is_refused_up_front_when_the_agent_has_it_disabled()
    {
        // Blocked in the agent, so nothing can ever shut this machine down; the client checks guest-info first and
        // does not even send it.
        using var qga = await QemuGa.StartAsync("--block-rpcs", "guest-shutdown");
        using var transport = new UnixSocketAgentTransport(qga.SocketPath);
        var agent = new GuestAgent(transport);

        var error = await Assert.ThrowsAsync<GuestAgentException>(() => agent.ShutdownAsync(GuestShutdownMode.Halt));

        Assert.Equal("CommandDisabled", error.ErrorClass);
        Assert.Contains("does not offer guest-shutdown", error.Message);
        await agent.PingAsync();
    }

    [Fact]
    public async Task Bad_programs_are_refused_before_anything_is_sent()
    {
        using var folder = new TempFolder();
        // No agent at all: validation must not need one.
        var agent = new GuestAgent(new UnixSocketAgentTransport(Path.Combine(folder.Path, "none.sock")));

        var relative = await Assert.ThrowsAsync<ArgumentException>(() => agent.ExecAsync("bin/echo", [], true));
        Assert.Equal("path", relative.ParamName);
        Assert.Contains("must be absolute", relative.Message);
        var nulInPath = await Assert.ThrowsAsync<ArgumentException>(() => agent.RunAsync("/bin/ec\0ho", [], Generous));
        Assert.Contains("NUL", nulInPath.Message);
        var nulInArg = await Assert.ThrowsAsync<ArgumentException>(() =>
            agent.RunAsync("/bin/echo", ["fine", "a\0b"], Generous));
        Assert.Equal("args", nulInArg.ParamName);
        Assert.Contains("Argument 1 contains a NUL character", nulInArg.Message);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() =>
            agent.RunAsync("/bin/echo", [], TimeSpan.Zero));
    }

}
