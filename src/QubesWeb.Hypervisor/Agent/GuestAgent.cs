using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace QubesWeb.Hypervisor.Agent;

/// <summary>
/// A client for the QEMU guest agent (qemu-ga) of one guest, over either transport. Programs are started by path and
/// argument list, never through a shell. Thread-safe: the transport runs one command at a time.
/// </summary>
public sealed class GuestAgent
{
    public static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The status of a running program is asked for after 50 ms, then ever less often, up to every 500 ms:
    /// the agent has no completion notice, polling it is the protocol.</summary>
    private static readonly TimeSpan FirstPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan LongestPoll = TimeSpan.FromMilliseconds(500);

    /// <summary>How long killing a program that ran too long (or was cancelled) may take, start of the kill to the
    /// program's end.</summary>
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(10);

    /// <summary>For commands the agent does not answer: time to hand them over (and to hear an error, if any).</summary>
    private static readonly TimeSpan HandOverTimeout = TimeSpan.FromSeconds(2);

    /// <param name="commandTimeout">How long each agent command may take; <see cref="DefaultCommandTimeout"/> if null.</param>
    /// <param name="killPath">The guest's kill(1), used to end a program that ran too long: the agent has no command
    /// for it.</param>
    public GuestAgent(IGuestAgentTransport transport, TimeSpan? commandTimeout = null, string killPath = "/bin/kill")
    {
        ArgumentNullException.ThrowIfNull(transport);
        ValidateProgram(killPath, [], nameof(killPath), nameof(killPath));
        Transport = transport;
        CommandTimeout = commandTimeout ?? DefaultCommandTimeout;
        ValidateTimeout(CommandTimeout, nameof(commandTimeout));
        KillPath = killPath;
    }

    public IGuestAgentTransport Transport { get; }
    public TimeSpan CommandTimeout { get; }
    public string KillPath { get; }

    /// <summary><c>guest-ping</c>: returns when the agent answers.</summary>
    public Task PingAsync(CancellationToken ct = default) =>
        Transport.ExecuteAsync("guest-ping", null, CommandTimeout, ct);

    /// <summary>
    /// <c>guest-exec</c>: starts <paramref name="path"/> with <paramref name="args"/> (argv[1..]) and returns its pid in
    /// the guest, without waiting. Without <paramref name="captureOutput"/> the output goes wherever the agent's own
    /// output goes. Each started program must be asked for with <see cref="ExecStatusAsync"/> until it has exited, or
    /// the agent keeps its entry.
    /// </summary>
    /// <exception cref="ArgumentException">The path is not absolute, or the path or an argument holds a NUL.</exception>
    /// <exception cref="GuestAgentException">The guest could not start it (e.g. no such file).</exception>
    /// <param name="env">Environment entries (NAME=value) the program gets besides the agent's own; null for none.</param>
    public async Task<long> ExecAsync(string path, IReadOnlyList<string> args, bool captureOutput,
        CancellationToken ct = default, IReadOnlyList<string>? env = null)
    {
        ValidateProgram(path, args, nameof(path), nameof(args));
        if (env is not null) ValidateEnvironment(env);
        var arguments = new JsonObject
        {
            ["path"] = path,
            ["arg"] = new JsonArray(args.Select(a => (JsonNode?)JsonValue.Create(a)).ToArray()),
            ["capture-output"] = captureOutput,
        };
        if (env is { Count: > 0 }) arguments["env"] = new JsonArray(env.Select(e => (JsonNode?)JsonValue.Create(e)).ToArray());
        JsonElement started;
        try
        {
            started = await Transport.ExecuteAsync("guest-exec", arguments, CommandTimeout, ct);
        }
        catch (GuestAgentException e)
        {
            throw new GuestAgentException(e.Command, e.ErrorClass, e.Description,
                $"The guest could not start {path}: {e.Description}", e);
        }
        return started.ValueKind == JsonValueKind.Object && started.TryGetProperty("pid", out var pid) &&
            pid.TryGetInt64(out var value)
                ? value
                : throw new InvalidDataException($"The guest agent's guest-exec reply has no pid: {started.GetRawText()}");
    }

    /// <summary><c>guest-exec-status</c> of a program started with <see cref="ExecAsync"/>.</summary>
    /// <exception cref="GuestAgentException">Unknown pid, or one whose exit was already reported.</exception>
    public async Task<GuestExecStatus> ExecStatusAsync(long pid, CancellationToken ct = default)
    {
        var status = await StatusAsync(pid, ct);
        return new GuestExecStatus(status.Exited, status.ExitCode, status.Signal, Decode(status.Out),
            Decode(status.Err), status.OutTruncated, status.ErrTruncated);

        static string Decode(byte[]? data) => data is null ? "" : Encoding.UTF8.GetString(data);
    }

    /// <summary>
    /// Runs <paramref name="path"/> to its end: starts it with output captured and asks for its status (every 50 ms at
    /// first, growing to every 500 ms) until it exits. Output reaches <paramref name="onOutput"/> as the agent hands it
    /// over; qemu-ga only returns output once the program has exited, so with it everything arrives in one piece at
    /// the end. A program still running after <paramref name="timeout"/>, or when <paramref name="ct"/> is cancelled,
    /// is killed with <see cref="KillPath"/> <c>-KILL PID</c> (the agent has no kill command). Only that process is
    /// killed: children it started keep running.
    /// </summary>
    /// <param name="maxOutputBytes">Bytes of output (both streams together) decoded and handed over at most; the
    /// rest is counted (<see cref="GuestExecResult.DroppedBytes"/>), never decoded or kept: a guest is untrusted, and
    /// qemu-ga alone would hand over 16 MiB per stream.</param>
    /// <param name="whileRunning">Called after each status that says the program still runs, with the time it has
    /// run: a program that floods its output or hangs still shows progress to whoever waits for it.</param>
    /// <returns>The exit code (or signal) and the output, also when the program failed.</returns>
    /// <exception cref="GuestExecTimeoutException">Still running after <paramref name="timeout"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled (the program was killed).</exception>
    public async Task<GuestExecResult> RunAsync(string path, IReadOnlyList<string> args, TimeSpan timeout,
        Action<GuestOutputChunk>? onOutput = null, CancellationToken ct = default, long maxOutputBytes = long.MaxValue,
        Func<TimeSpan, Task>? whileRunning = null, IReadOnlyList<string>? env = null)
    {
        ValidateProgram(path, args, nameof(path), nameof(args));
        ValidateTimeout(timeout, nameof(timeout));
        ct.ThrowIfCancellationRequested();
        var began = Stopwatch.GetTimestamp();
        // Not cancellable: a cancellation between the start and its reply would leave a program nobody can kill.
        // Cancelling takes effect from the first status on (then killing it).
        var pid = await ExecAsync(path, args, captureOutput: true, CancellationToken.None, env);
        var budget = new OutputBudget(maxOutputBytes);
        var stdout = new OutputCollector(GuestOutputStream.StdOut, onOutput, budget);
        var stderr = new OutputCollector(GuestOutputStream.StdErr, onOutput, budget);
        var exited = false;
        var delay = FirstPoll;
        try
        {
            while (true)
            {
                var status = await StatusAsync(pid, ct);
                exited = status.Exited;
                stdout.Take(status.Out, flush: exited);
                stderr.Take(status.Err, flush: exited);
                if (exited)
                {
                    return new GuestExecResult(pid, status.ExitCode, status.Signal, stdout.Text, stderr.Text,
                        status.OutTruncated, status.ErrTruncated, budget.Dropped);
                }
                if (whileRunning is not null) await whileRunning(Stopwatch.GetElapsedTime(began));
                var left = timeout == Timeout.InfiniteTimeSpan
                    ? Timeout.InfiniteTimeSpan
                    : timeout - Stopwatch.GetElapsedTime(began);
                if (left != Timeout.InfiniteTimeSpan && left <= TimeSpan.Zero)
                {
                    var killed = await TryKillAsync(pid, TakeLast);
                    exited = true;
                    throw new GuestExecTimeoutException(path, pid, timeout, killed);
                }
                await Task.Delay(left == Timeout.InfiniteTimeSpan || delay < left ? delay : left, ct);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 3 / 2, LongestPoll.Ticks));
            }
        }
        catch (Exception e) when (!exited &&
            (e is OperationCanceledException && ct.IsCancellationRequested || stdout.Failed || stderr.Failed))
        {
            await TryKillAsync(pid, TakeLast);
            throw;
        }

        // What a killed program printed until then reaches the caller too (within the budget): the last words of a
        // hung or flooding program are what the user needs to see.
        void TakeLast(RawStatus last)
        {
            if (stdout.Failed || stderr.Failed) return;
            try
            {
                stdout.Take(last.Out, flush: true);
                stderr.Take(last.Err, flush: true);
            }
            catch
            {
                // The caller's handler failing here must not hide why the program was killed.
            }
        }
    }

    /// <summary>
    /// <c>guest-shutdown</c>. The agent does not answer it when it works, so this returns once the command is handed
    /// over; the shutdown itself shows in the domain's state. Checks first (<c>guest-info</c>) that the agent offers
    /// the command.
    /// </summary>
    /// <exception cref="GuestAgentException">The agent has guest-shutdown disabled or does not know it.</exception>
    public async Task ShutdownAsync(GuestShutdownMode mode = GuestShutdownMode.PowerDown, CancellationToken ct = default)
    {
        var modeName = mode switch
        {
            GuestShutdownMode.PowerDown => "powerdown",
            GuestShutdownMode.Reboot => "reboot",
            GuestShutdownMode.Halt => "halt",
            _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Not a shutdown mode."),
        };
        const string command = "guest-shutdown";
        var info = await Transport.ExecuteAsync("guest-info", null, CommandTimeout, ct);
        if (!Offers(info, command))
        {
            throw new GuestAgentException(command, "CommandDisabled", $"{command} is disabled or unknown",
                $"The guest agent does not offer {command} (it is disabled or unknown), so it cannot shut the guest down.");
        }
        await Transport.SendAsync(command, new JsonObject { ["mode"] = modeName }, HandOverTimeout, ct);
    }

    private static bool Offers(JsonElement info, string command)
    {
        if (info.ValueKind != JsonValueKind.Object ||
            !info.TryGetProperty("supported_commands", out var commands) || commands.ValueKind != JsonValueKind.Array)
        {
            return false;
        }
        foreach (var entry in commands.EnumerateArray())
        {
            if (entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty("name", out var name) &&
                name.ValueKind == JsonValueKind.String && name.GetString() == command)
            {
                return entry.TryGetProperty("enabled", out var enabled) && enabled.ValueKind == JsonValueKind.True;
            }
        }
        return false;
    }

    private async Task<RawStatus> StatusAsync(long pid, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pid, 1);
        var reply = await Transport.ExecuteAsync("guest-exec-status", new JsonObject { ["pid"] = pid },
            CommandTimeout, ct);
        if (reply.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"The guest agent's guest-exec-status reply is not an object: {reply.GetRawText()}");
        }
        return new RawStatus(
            Flag(reply, "exited"), Number(reply, "exitcode"), Number(reply, "signal"),
            Data(reply, "out-data"), Data(reply, "err-data"),
            Flag(reply, "out-truncated"), Flag(reply, "err-truncated"));

        static bool Flag(JsonElement o, string name) =>
            o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

        static int? Number(JsonElement o, string name) =>
            o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n)
                ? n
                : null;

        static byte[]? Data(JsonElement o, string name) =>
            o.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetBytesFromBase64() : null;
    }

    /// <summary>Kills a program and waits for the agent to report it gone; false when that did not work out.</summary>
    private async Task<bool> TryKillAsync(long pid, Action<RawStatus>? last = null)
    {
        using var limit = new CancellationTokenSource(KillTimeout);
        try
        {
            var killer = await ExecAsync(KillPath, ["-KILL", pid.ToString(CultureInfo.InvariantCulture)],
                captureOutput: true, limit.Token);
            // Both entries are dropped by the agent once their exit is reported. kill fails harmlessly when the
            // program ended by itself in the meantime; either way it is gone once its status says so.
            await WaitForExitAsync(killer, limit.Token);
            last?.Invoke(await WaitForExitAsync(pid, limit.Token));
            return true;
        }
        catch (Exception e) when (e is GuestAgentException or GuestAgentUnavailableException or TimeoutException
                                      or OperationCanceledException or InvalidDataException)
        {
            return false;
        }
    }

    private async Task<RawStatus> WaitForExitAsync(long pid, CancellationToken ct)
    {
        var delay = FirstPoll;
        while (true)
        {
            var status = await StatusAsync(pid, ct);
            if (status.Exited) return status;
            await Task.Delay(delay, ct);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 3 / 2, LongestPoll.Ticks));
        }
    }

    /// <summary>Each entry NAME=value, the name a shell variable's, no NUL anywhere (the C side would cut it there).</summary>
    private static void ValidateEnvironment(IReadOnlyList<string> env)
    {
        foreach (var e in env)
        {
            var eq = e.IndexOf('=');
            if (eq <= 0 || e.Contains('\0') || !(char.IsAsciiLetter(e[0]) || e[0] == '_') || !e[..eq].All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                throw new ArgumentException($"'{e.Replace("\0", "\\0")}' is not an environment entry NAME=value.", nameof(env));
        }
    }

    internal static void ValidateProgram(string path, IReadOnlyList<string> args, string pathName, string argsName)
    {
        ArgumentNullException.ThrowIfNull(path, pathName);
        ArgumentNullException.ThrowIfNull(args, argsName);
        if (!path.StartsWith('/'))
        {
            throw new ArgumentException(
                $"The program path must be absolute (start with '/'), so the guest runs exactly that file: '{path}'.",
                pathName);
        }
        if (path.Contains('\0'))
        {
            throw new ArgumentException("The program path contains a NUL character, which cannot reach the guest.",
                pathName);
        }
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i] is null)
            {
                throw new ArgumentException($"Argument {i} is null.", argsName);
            }
            if (args[i].Contains('\0'))
            {
                throw new ArgumentException(
                    $"Argument {i} contains a NUL character, which cannot reach the guest.", argsName);
            }
        }
    }

    internal static void ValidateTimeout(TimeSpan timeout, string name)
    {
        if (timeout <= TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(name, timeout, "A timeout must be positive or infinite.");
        }
    }

    /// <summary>"500 ms", "1 s", "2.5 s".</summary>
    internal static string Describe(TimeSpan span) =>
        span == Timeout.InfiniteTimeSpan ? "an unlimited time"
        : span < TimeSpan.FromSeconds(1) ? $"{span.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms"
        : $"{span.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s";

    private readonly record struct RawStatus(
        bool Exited, int? ExitCode, int? Signal, byte[]? Out, byte[]? Err, bool OutTruncated, bool ErrTruncated);

    /// <summary>The bytes both streams of one run may still hand over, and those dropped past it.</summary>
    private sealed class OutputBudget(long max)
    {
        public long Left { get; set; } = Math.Max(0, max);
        public long Dropped { get; set; }
    }

    /// <summary>One stream's output across status replies, decoded as UTF-8 even when a character is split between
    /// two replies; only up to the run's byte budget.</summary>
    private sealed class OutputCollector(GuestOutputStream stream, Action<GuestOutputChunk>? onOutput, OutputBudget budget)
    {
        private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
        private readonly StringBuilder _text = new();

        public string Text => _text.ToString();

        /// <summary>The callback threw: the program is then killed like on cancellation.</summary>
        public bool Failed { get; private set; }

        public void Take(byte[]? data, bool flush)
        {
            if (data is null && !flush)
            {
                return;
            }
            var bytes = data ?? [];
            if (bytes.Length > budget.Left)
            {
                budget.Dropped += bytes.Length - budget.Left;
                bytes = bytes[..(int)budget.Left];
            }
            budget.Left -= bytes.Length;
            var chars = new char[_decoder.GetCharCount(bytes, flush)];
            _decoder.GetChars(bytes, chars, flush);
            if (chars.Length == 0)
            {
                return;
            }
            var text = new string(chars);
            _text.Append(text);
            try
            {
                onOutput?.Invoke(new GuestOutputChunk(stream, text));
            }
            catch
            {
                Failed = true;
                throw;
            }
        }
    }
}
