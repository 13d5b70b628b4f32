using System.Text;

namespace QubesWeb.Services.Updates;

/// <summary>
/// How much of what a guest prints reaches a job's log. A guest is untrusted: a compromised template (or a package
/// manager gone wrong) can print without end, and every line lands in the inventory and in every open page.
/// </summary>
public sealed record GuestOutputLimits(long MaxBytesPerRun, long MaxBytesPerJob, int MaxLineLength)
{
    public static readonly GuestOutputLimits Default = new(1L << 20, 4L << 20, 2000);
}

/// <summary>
/// One job's program output on its way into the job's log: split into lines (also across chunks), each line cut at
/// <see cref="GuestOutputLimits.MaxLineLength"/>, each run cut at <see cref="GuestOutputLimits.MaxBytesPerRun"/> and
/// the job at <see cref="GuestOutputLimits.MaxBytesPerJob"/> (UTF-8 bytes), with a line saying where and why it was
/// cut. One instance per job, <see cref="BeginRun"/> before each program.
/// </summary>
public sealed class GuestOutputLog(GuestOutputLimits limits, Func<IReadOnlyList<string>, Task> write)
{
    private readonly StringBuilder _partial = new();
    private readonly List<string> _pending = [];
    private readonly object _gate = new();
    private long _runBytes, _jobBytes;
    private bool _runCut, _jobCut;

    public GuestOutputLimits Limits => limits;

    /// <summary>Bytes the current run may still log: what a guest agent needs to decode at most (one more shows the cut).</summary>
    public long RunBudget
    {
        get { lock (_gate) return Math.Max(0, Math.Min(limits.MaxBytesPerRun - _runBytes, limits.MaxBytesPerJob - _jobBytes)) + 1; }
    }

    public void BeginRun()
    {
        lock (_gate)
        {
            _runBytes = 0;
            _runCut = false;
            _partial.Clear();
        }
    }

    /// <summary>Takes a chunk of output (any size, lines split anywhere); call <see cref="FlushAsync"/> to write.</summary>
    public void Take(string text)
    {
        lock (_gate)
        {
            foreach (var c in text)
            {
                // UTF-8 bytes: a surrogate pair's 4 counted as 2 + 2.
                var size = c < 0x80 ? 1 : c < 0x800 || char.IsSurrogate(c) ? 2 : 3;
                if (_runCut || _jobCut) continue;
                if (_runBytes + size > limits.MaxBytesPerRun || _jobBytes + size > limits.MaxBytesPerJob)
                {
                    EndLine();
                    var perJob = _jobBytes + size > limits.MaxBytesPerJob;
                    _runCut = true;
                    _jobCut |= perJob;
                    _pending.Add(perJob
                        ? $"[output cut here: this task's log keeps at most {Bytes(limits.MaxBytesPerJob)} of program output; the rest is not logged]"
                        : $"[output cut here: a program's output is logged up to {Bytes(limits.MaxBytesPerRun)}; the rest of this one is not logged]");
                    continue;
                }
                _runBytes += size;
                _jobBytes += size;
                if (c == '\n') EndLine();
                else if (c != '\r') _partial.Append(c);
            }
        }
    }

    /// <summary>Writes the lines taken so far; with <paramref name="endOfRun"/> also the last unfinished line.</summary>
    public async Task FlushAsync(bool endOfRun = false)
    {
        List<string> lines;
        lock (_gate)
        {
            if (endOfRun) EndLine();
            lines = [.. _pending];
            _pending.Clear();
        }
        if (lines.Count > 0) await write(lines);
    }

    private void EndLine()
    {
        if (_partial.Length == 0) return;
        var line = _partial.ToString();
        _partial.Clear();
        _pending.Add(line.Length <= limits.MaxLineLength ? line
            : line[..limits.MaxLineLength] + $" [line cut at {limits.MaxLineLength} characters; it had {line.Length}]");
    }

    private static string Bytes(long n) => QubesWeb.Services.Format.Bytes(n);
}
