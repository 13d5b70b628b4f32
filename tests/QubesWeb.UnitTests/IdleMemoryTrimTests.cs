// The console gives memory back once tabs have closed and circuits have been quiet: once per wave, never while tabs
// come and go.
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using QubesWeb.Hosting;

namespace QubesWeb.UnitTests;

public sealed class IdleMemoryTrimTests
{
    private readonly FakeTimeProvider _time = new();

    [Fact]
    public void A_wave_of_closed_tabs_is_trimmed_once_after_the_quiet_time()
    {
        using var trim = new IdleMemoryTrim(NullLogger<IdleMemoryTrim>.Instance, _time);
        for (var i = 0; i < 50; i++) trim.CircuitClosed();

        _time.Advance(IdleMemoryTrim.Quiet - TimeSpan.FromSeconds(1));
        Assert.Equal(0, trim.Trims);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, trim.Trims);
        _time.Advance(IdleMemoryTrim.Quiet * 3);
        Assert.Equal(1, trim.Trims);
    }

    [Fact]
    public void Each_close_restarts_the_wait_and_a_new_tab_cancels_it()
    {
        using var trim = new IdleMemoryTrim(NullLogger<IdleMemoryTrim>.Instance, _time);
        trim.CircuitClosed();
        _time.Advance(IdleMemoryTrim.Quiet / 2);
        trim.CircuitClosed();
        _time.Advance(IdleMemoryTrim.Quiet / 2 + TimeSpan.FromSeconds(1));
        Assert.Equal(0, trim.Trims);

        trim.CircuitOpened();
        _time.Advance(IdleMemoryTrim.Quiet * 2);
        Assert.Equal(0, trim.Trims);

        trim.CircuitClosed();
        _time.Advance(IdleMemoryTrim.Quiet);
        Assert.Equal(1, trim.Trims);
    }

    [Fact]
    public void Nothing_is_trimmed_while_no_tab_has_closed()
    {
        using var trim = new IdleMemoryTrim(NullLogger<IdleMemoryTrim>.Instance, _time);
        trim.CircuitOpened();
        _time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, trim.Trims);
    }
}
