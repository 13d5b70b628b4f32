// What a guest prints reaches a job's log bounded: lines split across chunks, long lines cut with a note, each run
// and the whole job cut at their byte limits with a line saying where.
using QubesWeb.Services.Updates;

namespace QubesWeb.UnitTests;

public sealed class GuestOutputLogTests
{
    private readonly List<string> _logged = [];

    private GuestOutputLog Log(long perRun = 1000, long perJob = 10_000, int line = 50) =>
        new(new GuestOutputLimits(perRun, perJob, line), lines => { _logged.AddRange(lines); return Task.CompletedTask; });

    [Fact]
    public async Task Lines_split_across_chunks_are_logged_whole_and_an_unfinished_last_line_at_the_end_of_the_run()
    {
        var log = Log();
        log.BeginRun();
        log.Take("Reading pack");
        log.Take("age lists\r\nDone\nlast");
        await log.FlushAsync();
        Assert.Equal(["Reading package lists", "Done"], _logged);
        await log.FlushAsync(endOfRun: true);
        Assert.Equal(["Reading package lists", "Done", "last"], _logged);
    }

    [Fact]
    public async Task A_line_over_the_length_limit_is_cut_and_says_how_long_it_was()
    {
        var log = Log(line: 10);
        log.BeginRun();
        log.Take(new string('x', 25) + "\nshort\n");
        await log.FlushAsync(endOfRun: true);
        Assert.Equal(["xxxxxxxxxx [line cut at 10 characters; it had 25]", "short"], _logged);
    }

    [Fact]
    public async Task A_run_is_cut_at_its_byte_limit_with_a_line_saying_so_and_the_next_run_logs_again()
    {
        var log = Log(perRun: 12);
        log.BeginRun();
        log.Take("aaaa\nbbbb\ncccc\ndddd\n");
        await log.FlushAsync(endOfRun: true);
        log.BeginRun();
        log.Take("next\n");
        await log.FlushAsync(endOfRun: true);
        Assert.Equal(["aaaa", "bbbb", "cc", "[output cut here: a program's output is logged up to 12 B; the rest of this one is not logged]", "next"], _logged);
    }

    [Fact]
    public async Task The_job_is_cut_at_its_byte_limit_over_all_its_runs_and_logs_nothing_more()
    {
        var log = Log(perRun: 100, perJob: 15);
        log.BeginRun();
        log.Take("0123456789\n");
        await log.FlushAsync(endOfRun: true);
        log.BeginRun();
        log.Take("abcdefghij\n");
        await log.FlushAsync(endOfRun: true);
        log.BeginRun();
        log.Take("more\n");
        await log.FlushAsync(endOfRun: true);
        Assert.Equal(["0123456789", "abcd", "[output cut here: this task's log keeps at most 15 B of program output; the rest is not logged]"], _logged);
        Assert.Equal(1, log.RunBudget); // only the byte that shows the cut
    }

    [Fact]
    public async Task Bytes_are_counted_in_UTF_8()
    {
        var log = Log(perRun: 7);
        log.BeginRun();
        log.Take("ééé\né"); // 2 bytes each: the fourth é is past 7 bytes
        await log.FlushAsync(endOfRun: true);
        Assert.Equal("ééé", _logged[0]);
        Assert.StartsWith("[output cut here", _logged[1]);
    }
}
