// Every string of the interface, in Vietnamese (the default) and English.
// One table: a browser test checks that both languages have the same keys and
// that no Vietnamese is left on screen in English. Data (place names, node
// ids, notes) is not translated: it is marked lang="vi" where it is shown.

import { nowMs } from "./util.js";
import { DUTY } from "./strings-duty.js";

const STRINGS = {
  vi: {
    app_name: "Tiếng mõ an ninh",
    skip_to_main: "Bỏ qua, tới nội dung chính",
    nav_label: "Các mục chính",
    switch_lang: "English",
    switch_lang_label: "Switch to English",
    logout: "Đăng xuất",
    conn_connecting: "Đang kết nối…",
    conn_up: "Đang trực tuyến",
    conn_lost_short: "Mất kết nối",
    conn_lost: "Mất kết nối với trung tâm",
    conn_lost_detail: "Bảng này có thể không còn đúng. Đang thử kết nối lại…",
    enable_sound: "Bấm để bật âm thanh",
    sound_blocked_detail: "Trình duyệt đang chặn âm thanh: sẽ không nghe tiếng mõ khi có báo động.",
    sound_blocked_short: "Trình duyệt đang chặn âm thanh. Bấm nút “Bấm để bật âm thanh”.",
    test_sound: "Thử âm thanh",
    session_expired: "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.",

    tab_board: "Vụ việc",
    tab_map: "Bản đồ & nút",
    tab_troubles: "Sự cố thiết bị",
    tab_history: "Lịch sử",
    tab_actions: "Phát cảnh báo",
    tab_users: "Người dùng",
    tab_sim: "Mô phỏng",

    login_title: "Đăng nhập",
    login_hint: "Dành cho cán bộ trực ban, trưởng thôn và kỹ thuật viên.",
    username: "Tên đăng nhập",
    password: "Mật khẩu",
    password_new: "Mật khẩu (ít nhất 8 ký tự)",
    login_button: "Đăng nhập",
    login_bad: "Sai tên đăng nhập hoặc mật khẩu.",
    login_missing: "Hãy nhập tên đăng nhập và mật khẩu.",

    board_title: "Vụ việc đang mở",
    board_empty: "Không có vụ việc nào đang mở. Mọi nơi đều yên.",
    announce_new: "Báo động mới: {kind} tại {area}",
    title_alert: "⚠ BÁO ĐỘNG ({n}) – Tiếng mõ",
    origin_node: "nút",
    origin_phone: "điện thoại",
    elapsed_title: "Thời gian từ lúc bấm nút",
    pressed_at: "từ lúc bấm ({time})",
    press_count: "{n} lần bấm",
    acked_by: "Đã tiếp nhận: {who} lúc {time}",
    escalated: "Đã mở rộng cấp {n}",
    drill: "Diễn tập",
    late: "Muộn",
    late_hint: "Báo động đến quá muộn (bị giữ lâu trên nút): đã lưu, không phát mõ.",
    acknowledge: "Tiếp nhận",
    silence: "Tắt mõ",
    resolve: "Đã xử lý…",
    resolve_note: "Ghi chú (không bắt buộc)",
    resolve_pick: "Chọn kết quả để kết thúc vụ việc:",
    done_acknowledge: "Đã tiếp nhận vụ việc.",
    done_silence: "Đã tắt mõ.",
    done_resolve: "Đã kết thúc vụ việc.",

    kind_fire: "Cháy",
    kind_theft: "Trộm cắp",
    kind_robbery: "Cướp",
    kind_fight: "Đánh nhau, gây rối",
    kind_flood: "Lũ lụt",
    kind_medical: "Cấp cứu",
    kind_sos: "Khẩn cấp",
    kind_drill: "Diễn tập",
    kind_other: "Báo động",

    state_open: "Chưa tiếp nhận",
    state_acknowledged: "Đã tiếp nhận",
    state_resolved: "Đã xử lý",
    state_cancelled: "Đã huỷ",

    outcome_real: "Có thật",
    outcome_false_alarm: "Báo nhầm",
    outcome_prank: "Phá rối",
    outcome_test: "Thử nghiệm",

    map_title: "Bản đồ và tình trạng nút",
    area: "Khu vực",
    all_areas: "Tất cả khu vực",
    map_no_coords: "Chưa có toạ độ của nút nào để vẽ bản đồ.",
    map_some_no_coords: "{n} nút chưa có toạ độ (chỉ có trong bảng).",
    map_summary: "Sơ đồ {n} nút: {online} trực tuyến, {missing} mất kết nối, {sounding} đang kêu",
    health_title: "Tình trạng các nút",
    no_nodes: "Không có nút nào.",
    status_online: "Trực tuyến",
    status_offline: "Mất kết nối",
    status_missing: "Mất tín hiệu",
    status_sounding: "Đang kêu",
    status_unknown: "Chưa rõ",
    col_node: "Nút",
    col_area: "Thôn / khu vực",
    col_status: "Trạng thái",
    col_last_seen: "Lần cuối",
    col_outbox: "Hàng đợi",
    col_power: "Nguồn điện",
    col_battery: "Pin",
    col_signal: "Sóng",
    col_version: "Phiên bản",
    col_actions: "Thao tác",
    disabled: "đã tắt",
    never: "chưa bao giờ",
    power_mains: "Điện lưới",
    power_battery: "Đang chạy pin",
    power_lost: "Mất điện",
    power_low: "Pin yếu",
    power_unknown: "Chưa rõ",
    node_test: "Thử mõ",
    node_ping: "Kiểm tra",
    node_enable: "Bật nút",
    node_disable: "Tắt nút",
    done_node_test: "Đã gửi lệnh thử mõ tới {id}.",
    done_node_ping: "Đã gửi lệnh kiểm tra tới {id}.",
    ago_now: "vừa xong",
    ago_s: "{n} giây trước",
    ago_m: "{n} phút trước",
    ago_h: "{n} giờ trước",
    ago_d: "{n} ngày trước",

    troubles_title: "Sự cố thiết bị",
    troubles_none: "Không có sự cố thiết bị nào.",
    show_cleared: "Hiện cả sự cố đã hết",
    col_trouble: "Sự cố",
    col_subject: "Nút / khu vực",
    col_since: "Từ lúc",
    col_cleared: "Đã hết lúc",
    col_detail: "Chi tiết",
    still_open: "Còn đang xảy ra",
    trouble_node_offline: "Nút mất kết nối",
    trouble_node_missing: "Nút mất tín hiệu",
    trouble_area_loss: "Khu vực mất nhiều nút",
    trouble_noisy_node: "Nút báo động liên tục",
    trouble_failed_to_sound: "Mõ không kêu",
    trouble_sounder_fault: "Hỏng bộ gõ mõ / còi",
    trouble_unknown_node: "Nút lạ (chưa đăng ký)",
    trouble_disabled_node: "Nút đã tắt vẫn gửi báo động",
    trouble_low_battery: "Pin yếu",
    trouble_on_battery: "Mất điện, đang chạy pin",
    trouble_power_cut: "Mất điện lưới cả khu vực",
    trouble_outbox_backlog: "Tin chờ gửi bị dồn",
    trouble_no_broker: "Trung tâm mất kết nối máy chủ tin",
    trouble_database_recreated: "Cơ sở dữ liệu bị xoá và tạo lại: mất tài khoản và lịch sử",
    trouble_other: "Sự cố khác",

    history_title: "Lịch sử vụ việc",
    kind: "Loại",
    all_kinds: "Tất cả các loại",
    outcome: "Kết quả",
    all_outcomes: "Mọi kết quả",
    drill_filter: "Diễn tập",
    drill_any: "Cả diễn tập",
    drill_no: "Không tính diễn tập",
    drill_only: "Chỉ diễn tập",
    from_date: "Từ ngày",
    to_date: "Đến ngày",
    apply_filters: "Lọc",
    download_csv: "Tải về CSV",
    load_more: "Xem thêm",
    history_none: "Không có vụ việc nào khớp bộ lọc.",
    col_time: "Thời gian",
    col_kind: "Loại",
    col_origin: "Nút bấm",
    col_state: "Trạng thái",
    col_outcome: "Kết quả",
    col_handled_by: "Người xử lý",
    col_presses: "Số lần bấm",
    col_note: "Ghi chú",

    actions_title: "Phát cảnh báo và diễn tập",
    broadcast_title: "Phát cảnh báo",
    broadcast_hint: "Cho mõ / còi của một khu vực kêu theo hiệu lệnh đã quy ước.",
    signal: "Hiệu lệnh",
    signal_warning: "Cảnh báo chung",
    signal_fire: "Cháy",
    signal_theft: "Trộm cắp",
    signal_robbery: "Cướp",
    signal_fight: "Đánh nhau, gây rối",
    signal_flood: "Lũ lụt",
    signal_medical: "Cấp cứu",
    signal_sos: "Khẩn cấp",
    duration_s: "Thời gian kêu (giây)",
    message: "Nội dung (ghi vào nhật ký)",
    broadcast_send: "Phát cảnh báo",
    done_broadcast: "Đã phát cảnh báo tới {area}.",
    all_clear_title: "Hết báo động",
    all_clear_hint: "Tắt mọi tiếng mõ đang kêu và phát hiệu lệnh hết báo động.",
    all_clear_send: "Phát hết báo động",
    done_all_clear: "Đã phát hết báo động tới {area}.",
    drill_title: "Diễn tập",
    drill_hint: "Tiếng gõ chậm, không tính là báo động thật. Hãy báo trước cho bà con.",
    drill_start: "Bắt đầu diễn tập",
    drill_stop: "Dừng diễn tập",
    drills_running: "Đang diễn tập",
    done_drill: "Đã bắt đầu diễn tập ở {area}.",
    done_drill_stop: "Đã dừng diễn tập.",
    confirm_send: "Bấm lần nữa để xác nhận: {area}",

    users_title: "Quản lý người dùng",
    households_title: "Hộ dân báo động qua điện thoại",
    households_hint: "Theo tệp đăng ký (registry): hộ nhắn tin từ khóa hoặc gọi nhỡ để báo động cho thôn của mình.",
    households_none: "Chưa có hộ nào trong tệp đăng ký.",
    household_name: "Hộ",
    household_area: "Thôn",
    household_phones: "Số điện thoại",
    trouble_phone_call: "Cuộc gọi báo động chờ xác nhận",
    trouble_unknown_caller: "Báo động từ số lạ (không đánh mõ)",
    trouble_phone_flood: "Một số gửi quá nhiều tin/cuộc gọi",
    user_add: "Thêm người dùng",
    display_name: "Tên hiển thị",
    role: "Vai trò",
    role_of: "Vai trò của {name}",
    role_viewer: "Chỉ xem",
    role_operator: "Cán bộ trực ban",
    role_admin: "Quản trị",
    who_area: "Khu vực: {area}",
    who_area_hint: "Tài khoản này chỉ xem và xử lý khu vực này",
    user_create: "Tạo người dùng",
    user_reset_password: "Đặt lại mật khẩu",
    user_delete: "Xoá",
    user_delete_confirm: "Bấm lần nữa để xoá",
    done_user_create: "Đã tạo người dùng {name}.",
    done_user_role: "{name} giờ là: {role}.",
    done_user_password: "Mật khẩu mới của {name}: {password} (ghi lại ngay, sẽ không hiện lại)",
    done_user_delete: "Đã xoá người dùng {name}.",

    sim_title: "Mô phỏng",
    sim_phone_title: "Hộ dân báo qua điện thoại",
    sim_phone_hint: "Nhắn tin (ví dụ CHÁY, TRỘM, CỨU, hoặc 1 để xác nhận) hoặc gọi nhỡ tới modem của hub như một hộ dân.",
    sim_phone_household: "Hộ",
    sim_phone_text: "Nội dung tin nhắn",
    sim_phone_sms: "Gửi tin nhắn",
    sim_phone_call: "Gọi nhỡ",
    sim_phone_sent: "Đã gửi tin nhắn tới hub.",
    sim_phone_rang: "Đã gọi tới hub.",
    sim_hint: "Bấm nút của một nút mô phỏng như một hộ gia đình, rồi xem mõ của cả thôn kêu.",
    press_button: "Bấm: {kind}",
    done_press: "Đang giữ nút trên {id}…",
    gong_on: "Mõ đang kêu",
    gong_off: "Mõ im",
    led_is: "Đèn: {state}",
    led_idle: "bình thường",
    led_sending: "đang gửi",
    led_received: "trung tâm đã nhận",
    led_acknowledged: "đã tiếp nhận",
    led_no_hub: "mất kết nối trung tâm",
    led_fault: "hỏng",
    led_off: "tắt",

    err_network: "Không liên lạc được với trung tâm.",
    err_session: "Phiên đăng nhập đã hết hạn.",
    err_forbidden: "Bạn không có quyền làm việc này.",
    err_throttled: "Thử quá nhiều lần. Hãy đợi {s} giây.",
    err_hub: "Trung tâm báo lỗi",
    err_unknown: "Đã có lỗi. Hãy thử lại.",
  },
  en: {
    app_name: "Village security gong",
    skip_to_main: "Skip to main content",
    nav_label: "Main sections",
    switch_lang: "Tiếng Việt",
    switch_lang_label: "Chuyển sang tiếng Việt",
    logout: "Log out",
    conn_connecting: "Connecting…",
    conn_up: "Live",
    conn_lost_short: "Disconnected",
    conn_lost: "Connection to the hub lost",
    conn_lost_detail: "This board may be out of date. Reconnecting…",
    enable_sound: "Click to enable sound",
    sound_blocked_detail: "The browser is blocking sound: you will not hear the gong when an alarm comes.",
    sound_blocked_short: "The browser is blocking sound. Click “Click to enable sound”.",
    test_sound: "Test sound",
    session_expired: "Your session has expired. Please log in again.",

    tab_board: "Incidents",
    tab_map: "Map & nodes",
    tab_troubles: "Equipment troubles",
    tab_history: "History",
    tab_actions: "Broadcast",
    tab_users: "Users",
    tab_sim: "Simulator",

    login_title: "Log in",
    login_hint: "For officers on duty, hamlet heads and technicians.",
    username: "Username",
    password: "Password",
    password_new: "Password (at least 8 characters)",
    login_button: "Log in",
    login_bad: "Wrong username or password.",
    login_missing: "Enter your username and password.",

    board_title: "Open incidents",
    board_empty: "No open incidents. All is quiet.",
    announce_new: "New alarm: {kind} in {area}",
    title_alert: "⚠ ALARM ({n}) – Security gong",
    origin_node: "node",
    origin_phone: "phone",
    elapsed_title: "Time since the button was pressed",
    pressed_at: "since the press ({time})",
    press_count: "{n} presses",
    acked_by: "Acknowledged by {who} at {time}",
    escalated: "Widened, level {n}",
    drill: "Drill",
    late: "Late",
    late_hint: "This alarm reached the hub far too late (held long on its node): stored, not sounded.",
    acknowledge: "Acknowledge",
    silence: "Silence gongs",
    resolve: "Resolve…",
    resolve_note: "Note (optional)",
    resolve_pick: "Pick the outcome to close the incident:",
    done_acknowledge: "Incident acknowledged.",
    done_silence: "Gongs silenced.",
    done_resolve: "Incident resolved.",

    kind_fire: "Fire",
    kind_theft: "Theft",
    kind_robbery: "Robbery",
    kind_fight: "Fight / disorder",
    kind_flood: "Flood",
    kind_medical: "Medical emergency",
    kind_sos: "SOS",
    kind_drill: "Drill",
    kind_other: "Alarm",

    state_open: "Not yet acknowledged",
    state_acknowledged: "Acknowledged",
    state_resolved: "Resolved",
    state_cancelled: "Cancelled",

    outcome_real: "Real",
    outcome_false_alarm: "False alarm",
    outcome_prank: "Prank",
    outcome_test: "Test",

    map_title: "Map and node health",
    area: "Area",
    all_areas: "All areas",
    map_no_coords: "No node has coordinates to draw a map yet.",
    map_some_no_coords: "{n} nodes have no coordinates (table only).",
    map_summary: "Map of {n} nodes: {online} online, {missing} lost, {sounding} sounding",
    health_title: "Node health",
    no_nodes: "No nodes.",
    status_online: "Online",
    status_offline: "Offline",
    status_missing: "Missing",
    status_sounding: "Sounding",
    status_unknown: "Unknown",
    col_node: "Node",
    col_area: "Hamlet / area",
    col_status: "Status",
    col_last_seen: "Last seen",
    col_outbox: "Outbox",
    col_power: "Power",
    col_battery: "Battery",
    col_signal: "Signal",
    col_version: "Version",
    col_actions: "Actions",
    disabled: "disabled",
    never: "never",
    power_mains: "Mains",
    power_battery: "On battery",
    power_lost: "Power cut",
    power_low: "Low battery",
    power_unknown: "Unknown",
    node_test: "Test gong",
    node_ping: "Ping",
    node_enable: "Enable",
    node_disable: "Disable",
    done_node_test: "Test sent to {id}.",
    done_node_ping: "Ping sent to {id}.",
    ago_now: "just now",
    ago_s: "{n} s ago",
    ago_m: "{n} min ago",
    ago_h: "{n} h ago",
    ago_d: "{n} days ago",

    troubles_title: "Equipment troubles",
    troubles_none: "No equipment troubles.",
    show_cleared: "Also show cleared troubles",
    col_trouble: "Trouble",
    col_subject: "Node / area",
    col_since: "Since",
    col_cleared: "Cleared at",
    col_detail: "Detail",
    still_open: "Still going on",
    trouble_node_offline: "Node offline",
    trouble_node_missing: "Node missing",
    trouble_area_loss: "Area lost many nodes",
    trouble_noisy_node: "Node alarming repeatedly",
    trouble_failed_to_sound: "Gong did not sound",
    trouble_sounder_fault: "Gong striker / siren fault",
    trouble_unknown_node: "Unknown node (not registered)",
    trouble_disabled_node: "Disabled node still alarming",
    trouble_low_battery: "Low battery",
    trouble_on_battery: "Power cut, on battery",
    trouble_power_cut: "Mains power lost across an area",
    trouble_outbox_backlog: "Messages piling up in the outbox",
    trouble_no_broker: "Hub lost its message broker",
    trouble_database_recreated: "Database dropped and created again: users and history lost",
    trouble_other: "Other trouble",

    history_title: "Incident history",
    kind: "Kind",
    all_kinds: "All kinds",
    outcome: "Outcome",
    all_outcomes: "Any outcome",
    drill_filter: "Drills",
    drill_any: "Include drills",
    drill_no: "Without drills",
    drill_only: "Drills only",
    from_date: "From",
    to_date: "To",
    apply_filters: "Filter",
    download_csv: "Download CSV",
    load_more: "Show more",
    history_none: "No incidents match the filters.",
    col_time: "Time",
    col_kind: "Kind",
    col_origin: "Pressed at node",
    col_state: "State",
    col_outcome: "Outcome",
    col_handled_by: "Handled by",
    col_presses: "Presses",
    col_note: "Note",

    actions_title: "Broadcasts and drills",
    broadcast_title: "Broadcast a warning",
    broadcast_hint: "Sound an area's gongs / sirens with one of the agreed signals.",
    signal: "Signal",
    signal_warning: "General warning",
    signal_fire: "Fire",
    signal_theft: "Theft",
    signal_robbery: "Robbery",
    signal_fight: "Fight / disorder",
    signal_flood: "Flood",
    signal_medical: "Medical emergency",
    signal_sos: "SOS",
    duration_s: "Sound for (seconds)",
    message: "Message (kept in the log)",
    broadcast_send: "Broadcast",
    done_broadcast: "Warning broadcast to {area}.",
    all_clear_title: "All clear",
    all_clear_hint: "Stop every sounding gong and play the all-clear signal.",
    all_clear_send: "Send all clear",
    done_all_clear: "All clear sent to {area}.",
    drill_title: "Drill",
    drill_hint: "Slow strikes, never counted as a real alarm. Tell people beforehand.",
    drill_start: "Start drill",
    drill_stop: "Stop drill",
    drills_running: "Drills running",
    done_drill: "Drill started in {area}.",
    done_drill_stop: "Drill stopped.",
    confirm_send: "Click again to confirm: {area}",

    users_title: "User management",
    households_title: "Households alarming by phone",
    households_hint: "From the registry file: a household texts a keyword or rings the hub to alarm its own hamlet.",
    households_none: "No households in the registry yet.",
    household_name: "Household",
    household_area: "Hamlet",
    household_phones: "Phone numbers",
    trouble_phone_call: "Missed-call alarm waiting for confirmation",
    trouble_unknown_caller: "Alarm from an unknown number (not sounded)",
    trouble_phone_flood: "One number sending too many messages/calls",
    user_add: "Add a user",
    display_name: "Display name",
    role: "Role",
    role_of: "Role of {name}",
    role_viewer: "Viewer",
    role_operator: "Operator on duty",
    role_admin: "Administrator",
    who_area: "Area: {area}",
    who_area_hint: "This account sees and acts on this area only",
    user_create: "Create user",
    user_reset_password: "Reset password",
    user_delete: "Delete",
    user_delete_confirm: "Click again to delete",
    done_user_create: "User {name} created.",
    done_user_role: "{name} is now: {role}.",
    done_user_password: "New password for {name}: {password} (write it down now, it will not be shown again)",
    done_user_delete: "User {name} deleted.",

    sim_title: "Simulator",
    sim_phone_title: "Households alarming by phone",
    sim_phone_hint: "Text (e.g. CHAY, TROM, CUU, or 1 to confirm) or ring the hub's modem as a household.",
    sim_phone_household: "Household",
    sim_phone_text: "Message text",
    sim_phone_sms: "Send SMS",
    sim_phone_call: "Missed call",
    sim_phone_sent: "SMS sent to the hub.",
    sim_phone_rang: "Rang the hub.",
    sim_hint: "Press a simulated node's button as a household would, then watch the whole hamlet's gongs sound.",
    press_button: "Press: {kind}",
    done_press: "Holding the button on {id}…",
    gong_on: "Gong sounding",
    gong_off: "Gong quiet",
    led_is: "LED: {state}",
    led_idle: "normal",
    led_sending: "sending",
    led_received: "hub has it",
    led_acknowledged: "acknowledged",
    led_no_hub: "no hub",
    led_fault: "fault",
    led_off: "off",

    err_network: "Cannot reach the hub.",
    err_session: "Your session has expired.",
    err_forbidden: "You are not allowed to do this.",
    err_throttled: "Too many attempts. Wait {s} seconds.",
    err_hub: "The hub says",
    err_unknown: "Something went wrong. Please try again.",
  },
};
Object.assign(STRINGS.vi, DUTY.vi);
Object.assign(STRINGS.en, DUTY.en);

const STORAGE_KEY = "tiengmo.lang";
let lang = "vi";

export function initI18n() {
  let saved = null;
  try {
    saved = localStorage.getItem(STORAGE_KEY);
  } catch {
    saved = null; // private mode: Vietnamese, the default
  }
  lang = saved === "en" ? "en" : "vi";
  document.documentElement.lang = lang;
}

export function getLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "en" ? "en" : "vi";
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    /* not remembered, still switched */
  }
}

/** The string for `key` in the current language, with {name} filled from params. */
export function t(key, params) {
  let s = STRINGS[lang][key];
  if (s === undefined) {
    // Loud in the console and visible on screen, so a missing key is caught by the tests.
    console.error(`i18n: missing key ${key} (${lang})`);
    return `⟦${key}⟧`;
  }
  if (params) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  return s;
}

/** Text of every [data-i18n] element and [data-i18n-attr="attr:key;..."] attribute. */
export function applyI18n(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of node.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      if (attr && key) node.setAttribute(attr, t(key));
    }
  }
  // The switch names the other language in that language (a reader of it can find it).
  const sw = root.getElementById ? root.getElementById("btn-lang") : null;
  if (sw) sw.lang = lang === "vi" ? "en" : "vi";
}

function labelOr(prefix, value, fallbackKey) {
  if (value === null || value === undefined || value === "") return t(fallbackKey);
  const key = `${prefix}${value}`;
  return key in STRINGS[lang] ? t(key) : String(value);
}

export const kindLabel = (k) => labelOr("kind_", k, "kind_other");
export const stateLabel = (s) => labelOr("state_", s, "status_unknown");
export const outcomeLabel = (o) => labelOr("outcome_", o, "status_unknown");
export const statusLabel = (s) => labelOr("status_", s, "status_unknown");
export const powerLabel = (p) => labelOr("power_", p, "power_unknown");
export const troubleLabel = (k) => labelOr("trouble_", k, "trouble_other");
export const roleLabel = (r) => labelOr("role_", r, "status_unknown");
export const ledLabel = (l) => labelOr("led_", l, "led_off");

/** "12 s ago", "3 min ago"... against the hub's clock. */
export function ago(ms, now = nowMs()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return t("ago_now");
  if (s < 60) return t("ago_s", { n: s });
  if (s < 3600) return t("ago_m", { n: Math.floor(s / 60) });
  if (s < 86400) return t("ago_h", { n: Math.floor(s / 3600) });
  return t("ago_d", { n: Math.floor(s / 86400) });
}

/** For the tests: both languages' keys. */
export function tableKeys() {
  return { vi: Object.keys(STRINGS.vi), en: Object.keys(STRINGS.en) };
}
